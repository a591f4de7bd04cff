//! Shapes that compile exactly as they do without the attribute: sync functions returning
//! borrows of their `&mut` parameters, and return types that drive the body's inference (a
//! future's declared output, a returned closure's signature).

use std::collections::HashMap;
use std::future::Future;

use langfuse_observe::observe;

#[derive(Default)]
struct Request {
    url: String,
    cache: HashMap<String, String>,
    counters: Vec<u32>,
    body: String,
}

#[derive(Debug, serde::Deserialize, PartialEq)]
struct User {
    name: String,
}

impl Request {
    #[observe]
    fn url(&mut self, url: &str) -> &mut Self {
        self.url = url.to_owned();
        self
    }

    #[observe]
    fn get(&mut self, key: &str) -> &String {
        self.cache
            .entry(key.to_owned())
            .or_insert_with(|| key.to_uppercase())
    }

    #[observe]
    fn values_mut(&mut self) -> impl Iterator<Item = &mut u32> + '_ {
        self.counters.iter_mut()
    }

    #[observe]
    fn step(&mut self) -> impl Future<Output = ()> + '_ {
        let counters = &mut self.counters;
        async move { counters.push(1) }
    }

    #[observe]
    fn user(&self, _id: u32) -> impl Future<Output = Result<User, serde_json::Error>> + Send + '_ {
        async move { Ok(serde_json::from_str(&self.body)?) }
    }
}

#[observe]
fn last_mut(values: &mut Vec<String>) -> Option<&mut String> {
    values.last_mut()
}

#[observe]
fn collected() -> impl Future<Output = Vec<u32>> {
    async { (0..3).collect() }
}

#[observe]
fn parsed(text: String) -> impl Future<Output = Result<u32, std::num::ParseIntError>> + Send {
    async move { Ok(text.parse()?) }
}

#[observe]
fn make() -> impl Fn(&str) -> usize {
    |text| text.len()
}

#[observe]
#[track_caller]
fn make_tracked(extra: usize) -> impl FnMut(&str) -> usize {
    move |text| text.len() + extra
}

#[observe]
fn boxed_closure() -> Box<dyn Fn(&str) -> usize> {
    Box::new(|text| text.len() * 2)
}

fn main() {
    let mut request = Request {
        body: r#"{"name":"ada"}"#.to_owned(),
        counters: vec![1, 2],
        ..Request::default()
    };
    request.url("a").url("b");
    assert_eq!(request.url, "b");
    assert_eq!(request.get("k"), "K");
    for value in request.values_mut() {
        *value += 10;
    }
    assert_eq!(request.counters, [11, 12]);
    futures_executor::block_on(request.step());
    assert_eq!(request.counters, [11, 12, 1]);
    let user = futures_executor::block_on(request.user(1)).unwrap();
    assert_eq!(user.name, "ada");

    let mut values = vec!["x".to_owned()];
    last_mut(&mut values).unwrap().push('y');
    assert_eq!(values, ["xy"]);

    assert_eq!(futures_executor::block_on(collected()), [0, 1, 2]);
    assert_eq!(futures_executor::block_on(parsed("42".into())), Ok(42));
    assert_eq!(make()("abc"), 3);
    assert_eq!(make_tracked(1)("abc"), 4);
    assert_eq!(boxed_closure()("abc"), 6);
}
