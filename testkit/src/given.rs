//! Given/when/then for the domain's rules: [`Case`] is one named check of
//! an aggregate's decision, of which the rule tests make tables; [`Then`]
//! what the command must come to.

use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use ticketflow_domain::DomainError;

/// Rebuilds an aggregate from its events.
pub fn replay<A: Aggregate>(events: Vec<A::Event>) -> A {
    let mut aggregate = A::default();
    for event in events {
        aggregate.apply(event);
    }
    aggregate
}

/// What a command must come to. Errors are checked by the rule broken (the
/// field, the conflict code, the missing thing), not by their wording.
#[derive(Debug)]
pub enum Then<E> {
    Events(Vec<E>),
    Invalid(&'static str),
    Conflict(&'static str),
    Forbidden,
    NotFound(&'static str),
}

impl<E> Then<E> {
    pub fn no_events() -> Self {
        Then::Events(vec![])
    }
}

/// One named given/when/then case of an aggregate's rules; a failure names
/// the case.
pub struct Case<A: Aggregate> {
    pub name: String,
    pub given: Vec<A::Event>,
    pub when: A::Command,
    pub then: Then<A::Event>,
}

impl<A> Case<A>
where
    A: Aggregate<Services = (), Error = DomainError>,
    A::Event: PartialEq + std::fmt::Debug,
{
    pub fn new(
        name: impl Into<String>,
        given: Vec<A::Event>,
        when: A::Command,
        then: Then<A::Event>,
    ) -> Self {
        Self {
            name: name.into(),
            given,
            when,
            then,
        }
    }

    /// Runs the command on the aggregate rebuilt from `given` (through
    /// cqrs-es's `TestFramework`) and checks the outcome.
    pub fn check(self) {
        let Self {
            name,
            given,
            when,
            then,
        } = self;
        let result = TestFramework::<A>::with(())
            .given(given)
            .when(when)
            .inspect_result();
        match (then, result) {
            (Then::Events(expected), Ok(events)) => {
                assert_eq!(events, expected, "case {name:?}: events")
            }
            (Then::Invalid(expected), Err(DomainError::Invalid { field, .. })) => {
                assert_eq!(field, expected, "case {name:?}: invalid field")
            }
            (Then::Conflict(expected), Err(DomainError::Conflict { code, .. })) => {
                assert_eq!(code, expected, "case {name:?}: conflict code")
            }
            (Then::Forbidden, Err(DomainError::Forbidden(_))) => {}
            (Then::NotFound(expected), Err(DomainError::NotFound { what })) => {
                assert_eq!(what, expected, "case {name:?}: not found")
            }
            (then, got) => panic!("case {name:?}: expected {then:?}, got {got:?}"),
        }
    }
}

/// Checks every case; the first failure names its case.
pub fn check_all<A>(cases: Vec<Case<A>>)
where
    A: Aggregate<Services = (), Error = DomainError>,
    A::Event: PartialEq + std::fmt::Debug,
{
    for case in cases {
        case.check();
    }
}
