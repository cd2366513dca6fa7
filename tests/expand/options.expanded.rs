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
    const STEPS: &'static [my_runtime::StepMeta] = &[
        my_runtime::StepMeta::new(
                my_runtime::StepKind::When,
                "load numbers",
                "load_numbers",
            )
            .input("")
            .output("Vec<u32>")
            .is_async(false)
            .fallible(false),
        my_runtime::StepMeta::new(my_runtime::StepKind::And, "summed", "sum")
            .input("Vec<u32>")
            .output("u32")
            .is_async(false)
            .fallible(false),
        my_runtime::StepMeta::new(my_runtime::StepKind::Finally, "clean up", "clean_up")
            .input("u32")
            .output("u32")
            .is_async(false)
            .fallible(false),
    ];
    #[allow(clippy::redundant_closure)]
    fn run<'a>(
        &'a self,
        ctx: &'a my_runtime::WorkflowContext,
        input: Self::Input,
    ) -> impl my_runtime::__private::Future<
        Output = my_runtime::__private::Result<Self::Output, my_runtime::WorkflowError>,
    > + ::core::marker::Send + 'a {
        #[diagnostic::on_unimplemented(
            message = "step \"summed\" takes `{T}`, but step \"load numbers\" produces `{Self}`",
            label = "expected `{Self}`, the output of step \"load numbers\"",
            note = "each step takes the previous step's output (the `Ok` type of a fallible step); `then` and `finally` steps pass the value on unchanged"
        )]
        trait SumInput<T> {
            fn checked(self) -> T;
            fn checked_ref(&self) -> &T;
        }
        impl<T> SumInput<T> for T {
            fn checked(self) -> T {
                self
            }
            fn checked_ref(&self) -> &T {
                self
            }
        }
        #[diagnostic::on_unimplemented(
            message = "step \"clean up\" takes `{T}`, but step \"summed\" produces `{Self}`",
            label = "expected `{Self}`, the output of step \"summed\"",
            note = "each step takes the previous step's output (the `Ok` type of a fallible step); `then` and `finally` steps pass the value on unchanged"
        )]
        trait CleanUpInput<T> {
            fn checked(self) -> T;
            fn checked_ref(&self) -> &T;
        }
        impl<T> CleanUpInput<T> for T {
            fn checked(self) -> T {
                self
            }
            fn checked_ref(&self) -> &T {
                self
            }
        }
        let () = input;
        my_runtime::__private::Workflow::given(
                ctx,
                "load numbers",
                move || Self::load_numbers(),
            )
            .kind(my_runtime::StepKind::When)
            .overridable()
            .and(
                "summed",
                move |value| self.sum(<_ as SumInput<Vec<u32>>>::checked(value)),
            )
            .overridable()
            .finally(
                "clean up",
                move |value| {
                    self
                        .clean_up(
                            value.map(|v| <_ as CleanUpInput<u32>>::checked_ref(v)),
                        )
                },
            )
            .result()
    }
}
