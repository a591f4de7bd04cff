//! `#[track_caller]` functions keep reporting their caller's location, also through early
//! `return` and `?`, with `Result`, `Option` and other returns.

use std::panic::Location;

use langfuse_observe::observe;

#[observe]
#[track_caller]
fn here() -> &'static Location<'static> {
    Location::caller()
}

#[track_caller]
#[observe]
fn here_unit(expected_line: u32) {
    assert_eq!(Location::caller().line(), expected_line);
}

#[observe]
#[track_caller]
fn checked(text: &str) -> Result<(u32, u32), std::num::ParseIntError> {
    let line = Location::caller().line();
    if text.is_empty() {
        return Ok((0, line));
    }
    let number: u32 = text.parse()?;
    Ok((number, line))
}

#[observe]
#[track_caller]
fn boxed_error(text: &str) -> Result<u32, Box<dyn std::error::Error>> {
    let number: u32 = text.parse()?;
    if number == 0 {
        return Err("zero".into());
    }
    Ok(Location::caller().line())
}

#[observe]
#[track_caller]
fn optional(numbers: &[u32]) -> Option<u32> {
    let first = numbers.first()?;
    if *first == 0 {
        return None;
    }
    Some(Location::caller().line())
}

#[observe]
#[track_caller]
fn early(value: u32) -> u32 {
    if value == 0 {
        return Location::caller().line();
    }
    let inner = || -> Option<u32> {
        let less = value.checked_sub(1)?;
        Some(less)
    };
    inner().unwrap_or_default() + Location::caller().line()
}

#[observe]
#[track_caller]
fn generic<T: Clone>(value: &T) -> (T, u32) {
    (value.clone(), Location::caller().line())
}

#[observe]
#[track_caller]
fn shown(value: u32) -> impl std::fmt::Display {
    if value == 0 {
        return format!("zero@{}", Location::caller().line());
    }
    format!("{value}@{}", Location::caller().line())
}

#[observe]
#[track_caller]
fn labelled(values: &[u32]) -> u32 {
    let mut total = 0;
    'outer: for value in values {
        for _ in 0..*value {
            if total > 5 {
                break 'outer;
            }
            total += 1;
        }
    }
    total
}

#[observe]
#[track_caller]
fn chained(text: &str) -> Result<u32, std::num::ParseIntError> {
    // A rewritten `?` that starts a statement, nested ones, and a value that starts with `::`.
    text.parse::<u32>()?.to_string().truncate(0);
    let nested = u32::from_str_radix(&text.parse::<u8>()?.to_string(), 16)?;
    if nested == 0 {
        return ::core::result::Result::Ok(Location::caller().line());
    }
    Ok(nested)
}

#[observe]
#[track_caller]
fn chained_option(numbers: &[usize]) -> Option<usize> {
    let second = *numbers.get(*numbers.first()?)?;
    if second == 0 {
        return ::core::option::Option::None;
    }
    numbers.get(1)?.checked_add(second)
}

struct Checker;

impl Checker {
    #[observe]
    #[track_caller]
    fn line(&self) -> u32 {
        Location::caller().line()
    }

    #[observe]
    #[track_caller]
    fn must_be_positive(&self, value: i32) -> Result<i32, String> {
        if value <= 0 {
            return Err(format!(
                "not positive at line {}",
                Location::caller().line()
            ));
        }
        Ok(value)
    }
}

fn main() {
    let (location, line) = (here(), line!());
    assert_eq!(location.file(), file!());
    assert_eq!(location.line(), line);
    here_unit(line!());
    assert_eq!(checked(""), Ok((0, line!())));
    assert_eq!(checked("5"), Ok((5, line!())));
    assert!(checked("x").is_err());
    assert_eq!(boxed_error("7").ok(), Some(line!()));
    assert!(boxed_error("0").is_err());
    assert!(boxed_error("x").is_err());
    assert_eq!(optional(&[]), None);
    assert_eq!(optional(&[0]), None);
    assert_eq!(optional(&[1]), Some(line!()));
    assert_eq!(early(0), line!());
    assert_eq!(early(2), line!() + 1);
    assert_eq!(generic(&"a".to_owned()), ("a".to_owned(), line!()));
    assert_eq!(shown(0).to_string(), format!("zero@{}", line!()));
    assert_eq!(shown(4).to_string(), format!("4@{}", line!()));
    assert_eq!(labelled(&[3, 3, 3]), 6);
    assert_eq!(chained("0"), Ok(line!()));
    assert_eq!(chained("12"), Ok(0x12));
    assert!(chained("300").is_err());
    assert_eq!(chained_option(&[]), None);
    assert_eq!(chained_option(&[5]), None);
    assert_eq!(chained_option(&[1, 0]), None);
    assert_eq!(chained_option(&[1, 2]), Some(4));
    assert_eq!(Checker.line(), line!());
    assert_eq!(Checker.must_be_positive(1), Ok(1));
    let (refused, line) = (Checker.must_be_positive(0), line!());
    assert_eq!(refused, Err(format!("not positive at line {line}")));

    // A panic inside the function is reported at the caller's line too.
    let (line, expected) = (panic_line(|| checked_panic(true)), line!());
    assert_eq!(line, Some(expected));
    let (line, expected) = (panic_line(|| always_fails("expected")), line!());
    assert_eq!(line, Some(expected));
    let (line, expected) = (panic_line(|| never_returns("expected")), line!());
    assert_eq!(line, Some(expected));
}

/// The line that a panic in `work` reports.
fn panic_line<R>(work: impl FnOnce() -> R + std::panic::UnwindSafe) -> Option<u32> {
    let previous = std::panic::take_hook();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::panic::set_hook(Box::new(move |info| {
        let _ = sender.send(info.location().map(|location| location.line()));
    }));
    let outcome = std::panic::catch_unwind(work);
    std::panic::set_hook(previous);
    assert!(outcome.is_err());
    receiver.recv().ok().flatten()
}

#[observe]
#[track_caller]
fn checked_panic(fail: bool) -> u32 {
    let values: Vec<u32> = Vec::new();
    if fail {
        // `Option::expect` is `#[track_caller]`, so its panic reports where this function
        // was called from only if this body still runs with the caller's location.
        return *values.first().expect("nothing");
    }
    values.len() as u32
}

#[observe]
#[track_caller]
fn always_fails(message: &str) -> u32 {
    panic!("{message}")
}

#[observe]
#[track_caller]
fn never_returns(message: &str) -> ! {
    panic!("{message}")
}
