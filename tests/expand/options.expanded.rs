//! Workflow options, a first step without input, default titles, `finally`.
struct Report;
impl Report {
    fn load_numbers() -> Vec<u32> {
        vec![1, 2, 3]
    }
    fn sum(&self, numbers: Vec<u32>) -> u32 {
        numbers.iter().sum()
    }
    fn clean_up(&self, outcome: Result<&u32, &WorkflowError>) {
        drop(outcome);
    }
}
impl my_runtime::WorkflowDefinition for Report {
    type Input = ();
    type Output = u32;
    const NAME: &'static str = "NightlyReport";
    const DESCRIPTION: ::core::option::Option<&'static str> = ::core::option::Option::Some(
        "Sums the day",
    );
    const STEPS: &'static [my_runtime::StepMeta] = {
        use my_runtime::{StepKind, StepMeta, __private::{CloneProbe, NotClone as _}};
        &[
            StepMeta::new(StepKind::When, "load numbers", "load_numbers")
                .input("")
                .output("Vec<u32>")
                .is_async(false)
                .fallible(false)
                .replayable(true)
                .produces::<Vec<u32>>(),
            StepMeta::new(StepKind::And, "summed", "sum")
                .input("Vec<u32>")
                .output("u32")
                .is_async(false)
                .fallible(false)
                .replayable(CloneProbe::<Vec<u32>>::CLONES)
                .produces::<u32>(),
            StepMeta::new(StepKind::Finally, "clean up", "clean_up")
                .input("u32")
                .output("u32")
                .is_async(false)
                .fallible(false)
                .replayable(false),
        ]
    };
    #[allow(clippy::redundant_closure)]
    fn run<'a>(
        &'a self,
        ctx: &'a my_runtime::WorkflowContext,
        input: Self::Input,
    ) -> impl my_runtime::__private::Future<
        Output = my_runtime::__private::Result<Self::Output, my_runtime::WorkflowError>,
    > + ::core::marker::Send + 'a {
        use my_runtime::__private::{
            DeclareOnce as _, DeclareReplays as _, IntoProbe as _, Workflow,
        };
        let () = input;
        my_runtime::__private::straight(
            ctx,
            async move {
                let flow = Workflow::__given_with(
                        ctx,
                        "load numbers",
                        (),
                        move |()| Self::load_numbers(),
                    )
                    .kind(my_runtime::StepKind::When)
                    .__probe()
                    .__declared()
                    .__step()
                    .await;
                let flow = Workflow::__after(ctx, flow)
                    .and("summed", move |value| self.sum(value))
                    .__probe()
                    .__declared()
                    .__step()
                    .await;
                let flow = Workflow::__after(ctx, flow)
                    .finally("clean up", move |value| self.clean_up(value))
                    .__step()
                    .await;
                flow
            },
        )
    }
}
#[allow(dead_code)]
impl Report {
    ///The step "load numbers", for a test's stand-in (`ContextBuilder::stand_in`), which takes `&()`: the chain starts from nothing.
    pub const LOAD_NUMBERS: my_runtime::StepRef<(), Vec<u32>> = my_runtime::StepRef::new(
        "NightlyReport",
        "load numbers",
    );
    ///The step "summed", for a test's stand-in (`ContextBuilder::stand_in`).
    pub const SUM: my_runtime::StepRef<Vec<u32>, u32> = my_runtime::StepRef::new(
        "NightlyReport",
        "summed",
    );
}
