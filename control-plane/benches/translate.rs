//! Translation time: a catalog of 200 plugins and 50 listeners, read from manifests and
//! turned into one proxy's LDS, RDS and CDS resources (every plugin in every chain), as the
//! engine does when the manifests change. `make bench` runs it.

use std::collections::BTreeSet;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use meshplug::catalog::{Catalog, ScannedFile, reconcile};
use meshplug::compose;

const PLUGINS: usize = 200;
const LISTENERS: usize = 50;

fn manifests() -> Vec<ScannedFile> {
    let phases = ["authn", "authz", "stats", "custom"];
    let mut files = vec![ScannedFile {
        file: "mesh/backend.yaml".into(),
        text: "apiVersion: meshplug.dev/v1alpha1\nkind: Cluster\nmetadata: {name: backend}\n\
               spec:\n  endpoints: [\"127.0.0.1:8080\", \"127.0.0.1:8081\"]\n"
            .into(),
    }];
    for l in 0..LISTENERS {
        files.push(ScannedFile {
            file: format!("mesh/listener-{l}.yaml"),
            text: format!(
                "apiVersion: meshplug.dev/v1alpha1\nkind: Listener\nmetadata: {{name: listener-{l}}}\n\
                 spec:\n  port: {}\n  routes:\n    - {{prefix: /api, cluster: backend}}\n    \
                 - {{directResponse: {{status: 404}}}}\n",
                10000 + l
            ),
        });
    }
    for p in 0..PLUGINS {
        files.push(ScannedFile {
            file: format!("plugins/plugin-{p}.yaml"),
            text: format!(
                "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\nmetadata: {{name: plugin-{p}}}\n\
                 spec:\n  artifact: plugin-{p}\n  phase: {}\n  priority: {}\n  \
                 config: {{key: value-{p}, list: [1, 2, 3]}}\n  targets:\n    labels: {{tier: edge}}\n",
                phases[p % phases.len()],
                p % 7
            ),
        });
    }
    files
}

fn translation(c: &mut Criterion) {
    let files = manifests();
    let catalog = reconcile(&Catalog::new(), &files);
    assert_eq!(catalog.errors().count(), 0);
    assert_eq!(catalog.plugins.len(), PLUGINS);
    let served: BTreeSet<String> = catalog.plugins.keys().cloned().collect();
    let mut group = c.benchmark_group("translate_200_plugins_x_50_listeners");
    group.bench_function("compose_and_encode", |b| {
        b.iter(|| {
            let plan = compose::plan(black_box(&catalog), black_box(&served));
            black_box(compose::envoy::resources(&plan))
        })
    });
    group.bench_function("read_manifests", |b| {
        b.iter(|| black_box(reconcile(&Catalog::new(), black_box(&files))))
    });
    group.finish();
}

criterion_group!(benches, translation);
criterion_main!(benches);
