//! Free functions: every kind of return, early exits, generics, lifetimes, `impl Trait`
//! arguments, pattern parameters, `unsafe fn`, and values that are neither `Serialize` nor
//! `Debug`.

use std::fmt::{Debug, Display};

use langfuse_observe::observe;

#[observe]
fn unit() {}

#[observe]
fn explicit_unit(flag: bool) -> () {
    if flag {
        return;
    }
}

#[observe]
fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[observe]
fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
    if text.is_empty() {
        return Ok(0);
    }
    let number: u32 = text.trim().parse()?;
    Ok(number * 2)
}

#[observe]
fn boxed_error(text: &str) -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
    Ok(text.parse::<u8>()?)
}

#[observe]
fn io_result(fail: bool) -> std::io::Result<()> {
    if fail {
        return Err(std::io::Error::other("failed"));
    }
    Ok(())
}

#[observe]
fn first_even(numbers: &[u32]) -> Option<u32> {
    let first = numbers.first()?;
    if first % 2 == 0 {
        return Some(*first);
    }
    numbers.iter().copied().find(|n| n % 2 == 0)
}

#[observe]
fn json(value: serde_json::Value) -> serde_json::Value {
    serde_json::json!({ "echo": value })
}

/// Neither `Serialize` nor `Debug`: recorded by its type name, and must compile.
struct Opaque {
    value: u8,
}

#[observe]
fn opaque(input: Opaque) -> Opaque {
    Opaque {
        value: input.value + 1,
    }
}

#[observe]
fn opaque_error(fail: bool) -> Result<Opaque, Opaque> {
    if fail {
        Err(Opaque { value: 0 })
    } else {
        Ok(Opaque { value: 1 })
    }
}

#[observe]
fn debug_only<T: Debug>(value: T) -> T {
    value
}

#[observe]
fn unbounded<T>(value: T) -> T {
    value
}

#[observe]
fn with_where<'a, T, U>(left: &'a T, right: U) -> (&'a T, String)
where
    T: Display + ?Sized,
    U: Into<String>,
{
    (left, right.into())
}

#[observe]
fn const_generic<const N: usize>(values: [u8; N]) -> usize {
    values.len()
}

#[observe]
fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.len() >= b.len() {
        a
    } else {
        b
    }
}

#[observe]
fn elided(text: &str) -> &str {
    text.trim()
}

#[observe]
fn anonymous_lifetime(text: &String) -> std::str::Chars<'_> {
    text.chars()
}

#[observe]
fn impl_args(items: impl IntoIterator<Item = u32>, label: impl Display) -> String {
    let total: u32 = items.into_iter().sum();
    format!("{label}: {total}")
}

struct Point {
    x: i32,
    y: i32,
}

struct Meters(f64);

#[observe]
fn patterns(
    (a, b): (u32, u32),
    Point { x, y: why }: Point,
    whole @ Meters(distance): Meters,
    [first, ..]: [u8; 3],
    _: u8,
    mut counter: u32,
    named: String,
) -> String {
    counter += a + b;
    format!("{counter} {x} {why} {distance} {first} {} {named}", whole.0)
}

#[observe]
fn evens(limit: u32) -> impl Iterator<Item = u32> {
    (0..limit).filter(|n| n % 2 == 0)
}

#[observe]
fn shown(value: u32) -> impl Display {
    format!("<{value}>")
}

#[observe]
fn boxed_iterator<'a>(words: &'a [&'a str]) -> Box<dyn Iterator<Item = usize> + 'a> {
    Box::new(words.iter().map(|word| word.len()))
}

#[observe]
unsafe fn read(pointer: *const u32) -> u32 {
    // SAFETY: the caller passes a pointer to a live `u32`.
    unsafe { *pointer }
}

#[observe]
pub(crate) extern "C" fn callback(code: i32) -> i32 {
    code + 1
}

#[observe]
fn nested_items(value: u32) -> u32 {
    fn helper(value: u32) -> Option<u32> {
        let doubled = value.checked_mul(2)?;
        Some(doubled)
    }
    let closure = |v: u32| -> Result<u32, String> {
        if v == 0 {
            return Err("zero".into());
        }
        Ok(v)
    };
    helper(value).unwrap_or(0) + closure(value).unwrap_or(0)
}

#[observe]
fn never(message: &str) -> ! {
    panic!("{message}")
}

fn main() {
    unit();
    explicit_unit(true);
    assert_eq!(add(2, 3), 5);
    assert_eq!(parse(""), Ok(0));
    assert_eq!(parse(" 21 "), Ok(42));
    assert!(parse("x").is_err());
    assert_eq!(boxed_error("7").ok(), Some(7));
    assert!(io_result(true).is_err());
    assert!(io_result(false).is_ok());
    assert_eq!(first_even(&[]), None);
    assert_eq!(first_even(&[2, 3]), Some(2));
    assert_eq!(first_even(&[1, 3, 4]), Some(4));
    assert_eq!(json(serde_json::json!(1))["echo"], 1);
    assert_eq!(opaque(Opaque { value: 1 }).value, 2);
    assert!(opaque_error(true).is_err());
    assert_eq!(debug_only(vec![1]), [1]);
    assert_eq!(unbounded(Opaque { value: 9 }).value, 9);
    let text = String::from("left");
    let (left, right) = with_where(text.as_str(), "right");
    assert_eq!((left, right.as_str()), ("left", "right"));
    assert_eq!(const_generic([1, 2, 3]), 3);
    assert_eq!(longest("ab", "abc"), "abc");
    assert_eq!(elided(" x "), "x");
    assert_eq!(anonymous_lifetime(&text).count(), 4);
    assert_eq!(impl_args(vec![1, 2], "sum"), "sum: 3");
    let described = patterns(
        (1, 2),
        Point { x: 3, y: 4 },
        Meters(5.5),
        [6, 7, 8],
        9,
        10,
        "named".into(),
    );
    assert_eq!(described, "13 3 4 5.5 6 5.5 named");
    assert_eq!(evens(5).collect::<Vec<_>>(), [0, 2, 4]);
    assert_eq!(shown(3).to_string(), "<3>");
    assert_eq!(boxed_iterator(&["a", "bcd"]).sum::<usize>(), 4);
    let value = 11;
    // SAFETY: the pointer comes from a live reference.
    assert_eq!(unsafe { read(&value) }, 11);
    assert_eq!(callback(1), 2);
    assert_eq!(nested_items(3), 9);
    assert!(std::panic::catch_unwind(|| never("expected panic")).is_err());
}
