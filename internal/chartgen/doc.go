// Package chartgen generates the chart's documentation and schema from the
// files they describe, so that none of them is kept by hand:
//
//   - the chart README (what `helm show readme` prints) from
//     README.md.tmpl, a text/template whose values table comes from the
//     `# --` comments of values.yaml (ReadValues, Readme);
//   - the project README's values reference, the same table between the
//     markers `<!-- values:sandbox-injector -->` and `<!-- end -->`;
//   - the pool items of values.schema.json from the SandboxPool CRD that
//     controller-gen writes into crds/ (PoolItems, SetPoolItems): the rest
//     of the schema is kept by hand, and values.yaml's keys are checked
//     against it by the chart's tests.
//
// `make generate-chart` runs hack/chartgen, which writes them;
// `make verify-chart` runs it with -check, and the chart's tests
// (TestChartReadme, TestReadmeValuesReference, TestValuesSchemaPools) fail
// on drift too.
package chartgen
