//! Workflow options, a first step without input, default titles, `finally`.

struct Report;

#[workflow(name = "NightlyReport", description = "Sums the day", crate = my_runtime)]
impl Report {
    #[step]
    fn load_numbers() -> Vec<u32> {
        vec![1, 2, 3]
    }

    #[step(and = "summed")]
    fn sum(&self, numbers: Vec<u32>) -> u32 {
        numbers.iter().sum()
    }

    #[step(finally)]
    fn clean_up(&self, outcome: Result<&u32, &WorkflowError>) {
        drop(outcome);
    }
}
