//! The host's files form layers: each imports only files below it, so a file can be read, tested and
//! changed knowing only what is below it. This test reads every file under `src/`, resolves the `crate::`,
//! `super::` and `self::` paths its non-test code uses (in `use` items and inline), and fails naming every
//! circle of files that import each other, directly or around a loop.
//!
//! `cargo test -p plugd --test layering -- --nocapture` also prints the map: each file's module and the
//! modules it imports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::{self, Visit};

/// Module path (`http::parse`; the crate root is `crate`) of every library file under `src/`.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let mut folders = vec![src.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("readable source folder") {
            let path = entry.expect("readable folder entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let relative = path.strip_prefix(src).expect("under src/");
                let name = relative
                    .with_extension("")
                    .to_string_lossy()
                    .replace('/', "::");
                let module = match name.as_str() {
                    // The binary is a crate of its own: it reaches the library as `plugd::`, not `crate::`.
                    "main" => continue,
                    "lib" => "crate".to_owned(),
                    other => other.strip_suffix("::mod").unwrap_or(other).to_owned(),
                };
                found.insert(module, path);
            }
        }
    }
    found
}

/// `#[cfg(test)]`: test code may reach any module.
fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| match &attr.meta {
        syn::Meta::List(list) => list.path.is_ident("cfg") && list.tokens.to_string() == "test",
        _ => false,
    })
}

/// The modules one file's code refers to.
struct Imports<'a> {
    known: &'a BTreeMap<String, PathBuf>,
    /// The module the visitor is in: the file's, then any inline module inside it.
    scope: Vec<String>,
    found: BTreeSet<String>,
}

impl Imports<'_> {
    /// Notes the module `path` lies in, if it names one of ours.
    fn resolve(&mut self, path: &[String]) {
        let Some(first) = path.first() else {
            return;
        };
        let absolute: Vec<String> = match first.as_str() {
            "crate" => path[1..].to_vec(),
            "self" => self.scope.iter().chain(&path[1..]).cloned().collect(),
            "super" => {
                let ups = path.iter().take_while(|s| *s == "super").count();
                let kept = self.scope.len().saturating_sub(ups);
                self.scope[..kept]
                    .iter()
                    .chain(&path[ups..])
                    .cloned()
                    .collect()
            }
            // `use parse::X` in `http/mod.rs`: a path that starts at a child module.
            _ => {
                let child: Vec<String> = self.scope.iter().chain(path).cloned().collect();
                if !self
                    .known
                    .contains_key(&child[..=self.scope.len()].join("::"))
                {
                    return;
                }
                child
            }
        };
        let module = (1..=absolute.len())
            .rev()
            .map(|len| absolute[..len].join("::"))
            .find(|module| self.known.contains_key(module));
        if let Some(module) = module {
            self.found.insert(module);
        }
    }
}

/// Every path a `use` tree names, `self` in a group standing for the group's prefix.
fn use_paths(tree: &syn::UseTree, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let with = |ident: &syn::Ident| {
        let mut path = prefix.to_vec();
        if ident != "self" {
            path.push(ident.to_string());
        }
        path
    };
    match tree {
        syn::UseTree::Path(p) => use_paths(&p.tree, &with(&p.ident), out),
        syn::UseTree::Name(n) => out.push(with(&n.ident)),
        syn::UseTree::Rename(r) => out.push(with(&r.ident)),
        syn::UseTree::Glob(_) => out.push(prefix.to_vec()),
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| use_paths(t, prefix, out)),
    }
}

impl<'ast> Visit<'ast> for Imports<'_> {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if is_test(&item.attrs) || item.content.is_none() {
            return;
        }
        self.scope.push(item.ident.to_string());
        visit::visit_item_mod(self, item);
        self.scope.pop();
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        if is_test(&item.attrs) {
            return;
        }
        let mut paths = Vec::new();
        use_paths(&item.tree, &[], &mut paths);
        paths.iter().for_each(|path| self.resolve(path));
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        if !is_test(&item.attrs) {
            visit::visit_item_fn(self, item);
        }
    }

    fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
        if !is_test(&item.attrs) {
            visit::visit_impl_item_fn(self, item);
        }
    }

    /// `pub(super)` names who may see an item, not a module it uses.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.resolve(&segments);
        visit::visit_path(self, path);
    }
}

/// Module -> the other modules its file imports.
fn import_map(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let known = modules(src);
    known
        .iter()
        .map(|(module, path)| {
            let text = std::fs::read_to_string(path).expect("readable source file");
            let file = syn::parse_file(&text)
                .unwrap_or_else(|err| panic!("{} does not parse: {err}", path.display()));
            let scope = match module.as_str() {
                "crate" => Vec::new(),
                other => other.split("::").map(str::to_owned).collect(),
            };
            let mut imports = Imports {
                known: &known,
                scope,
                found: BTreeSet::new(),
            };
            imports.visit_file(&file);
            imports.found.remove(module);
            (module.clone(), imports.found)
        })
        .collect()
}

/// The groups of modules that reach each other through imports (Tarjan's strongly connected
/// components), each as a list; a module on no circle is left out.
fn circles(map: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'m> {
        map: &'m BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'m str, usize>,
        low: BTreeMap<&'m str, usize>,
        stack: Vec<&'m str>,
        on_stack: BTreeSet<&'m str>,
        found: Vec<Vec<String>>,
    }

    impl<'m> Walk<'m> {
        fn visit(&mut self, module: &'m str) {
            let n = self.index.len();
            self.index.insert(module, n);
            self.low.insert(module, n);
            self.stack.push(module);
            self.on_stack.insert(module);
            for next in self.map.get(module).into_iter().flatten() {
                if !self.index.contains_key(next.as_str()) {
                    self.visit(next);
                    let low = self.low[module].min(self.low[next.as_str()]);
                    self.low.insert(module, low);
                } else if self.on_stack.contains(next.as_str()) {
                    let low = self.low[module].min(self.index[next.as_str()]);
                    self.low.insert(module, low);
                }
            }
            if self.low[module] == self.index[module] {
                let mut group = Vec::new();
                while let Some(member) = self.stack.pop() {
                    self.on_stack.remove(member);
                    group.push(member.to_owned());
                    if member == module {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    self.found.push(group);
                }
            }
        }
    }

    let mut walk = Walk {
        map,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for module in map.keys() {
        if !walk.index.contains_key(module.as_str()) {
            walk.visit(module);
        }
    }
    walk.found
}

#[test]
fn no_file_in_the_host_imports_a_file_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let map = import_map(&src);
    for (module, imports) in &map {
        let list: Vec<&str> = imports.iter().map(String::as_str).collect();
        println!("{module} -> {}", list.join(", "));
    }
    assert!(map.len() > 20, "found the host's files: {:?}", map.keys());
    let circles = circles(&map);
    assert!(
        circles.is_empty(),
        "modules that import each other (each group is one circle): {circles:?}"
    );
}

#[test]
fn the_check_finds_a_circle_and_ignores_test_code() {
    let map: BTreeMap<String, BTreeSet<String>> = [
        ("a", &["b"][..]),
        ("b", &["c"]),
        ("c", &["a"]),
        ("d", &["a"]),
    ]
    .into_iter()
    .map(|(m, to)| (m.to_owned(), to.iter().map(|s| s.to_string()).collect()))
    .collect();
    assert_eq!(circles(&map), [["a", "b", "c"]]);

    let source = syn::parse_file(
        "use crate::x::{self, Y};
         use super::z::*;
         pub(super) fn f() { crate::w::g(); }
         #[cfg(test)]
         mod tests { use crate::t::T; }",
    )
    .unwrap();
    let known: BTreeMap<String, PathBuf> = ["m::n", "x", "m::z", "w", "t"]
        .into_iter()
        .map(|m| (m.to_owned(), PathBuf::new()))
        .collect();
    let mut imports = Imports {
        known: &known,
        scope: vec!["m".to_owned(), "n".to_owned()],
        found: BTreeSet::new(),
    };
    imports.visit_file(&source);
    let found: Vec<&str> = imports.found.iter().map(String::as_str).collect();
    assert_eq!(found, ["m::z", "w", "x"]);
}
