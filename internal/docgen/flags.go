package docgen

import (
	"flag"
	"fmt"
	"strings"
)

// FlagTable renders every flag of fs, in name order, as a Markdown table:
// the flag with its value type, its environment variable (env(name); a
// column only when env is not nil), its default and its usage text, as
// `-help` would print them.
func FlagTable(fs *flag.FlagSet, env func(flagName string) string) string {
	var b strings.Builder
	if env != nil {
		b.WriteString("| Flag | Environment | Default | Description |\n|---|---|---|---|\n")
	} else {
		b.WriteString("| Flag | Default | Description |\n|---|---|---|\n")
	}
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		name := "`--" + f.Name
		if typ != "" {
			name += " " + typ
		}
		name += "`"
		def := "`" + f.DefValue + "`"
		if f.DefValue == "" {
			def = ""
		}
		if env != nil {
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", name, env(f.Name), def, Cell(usage))
		} else {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", name, def, Cell(usage))
		}
	})
	return b.String()
}

// Cell makes text safe for one Markdown table cell: one line, with its
// pipes escaped, and its < escaped outside `code spans` (else
// "sha256:<hex>" would read as an HTML tag and vanish).
func Cell(text string) string {
	text = strings.Join(strings.Fields(text), " ")
	parts := strings.Split(text, "`")
	for i := 0; i < len(parts); i += 2 {
		parts[i] = strings.ReplaceAll(parts[i], "<", "&lt;")
	}
	return strings.ReplaceAll(strings.Join(parts, "`"), "|", `\|`)
}
