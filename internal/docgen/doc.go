// Package docgen keeps generated parts of Markdown documents: a section
// between the marker lines `<!-- NAME -->` and `<!-- end -->` is replaced
// as a whole (Replace, Update), and FlagTable renders a command's flag set
// as such a section. The chart README generator (internal/chartgen)
// and the commands' flag reference tests (cmd/*/readme_test.go) use it, so
// that the README documents every flag and value from the code that
// defines them.
package docgen
