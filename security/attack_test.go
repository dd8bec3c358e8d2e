package security

import (
	"fmt"
	"os"
	"testing"
)

// ledger collects the outcome of every attack of the suite.
var ledger Ledger

// attack replays one attack as a subtest named area/name and records its
// outcome. try returns nil when the attack was refused, or an error that
// says what the attacker achieved. A try that fails the test otherwise
// (t.Fatal in its setup) counts as not refused: an attack whose outcome is
// unknown is no proof of a defence. A skipped one is not counted.
func attack(t *testing.T, area, name string, try func(t *testing.T) error) {
	t.Helper()
	t.Run(area+"/"+name, func(t *testing.T) {
		var err error
		done := false
		defer func() {
			if t.Skipped() {
				return
			}
			o := Outcome{Area: area, Name: name, Refused: done && err == nil && !t.Failed()}
			switch {
			case err != nil:
				o.Detail = err.Error()
			case !o.Refused:
				o.Detail = "the replay failed before its outcome was known"
			}
			ledger.Record(o)
		}()
		err = try(t)
		done = true
		if err != nil {
			t.Errorf("attack succeeded: %v", err)
		}
	})
}

func TestMain(m *testing.M) {
	code := m.Run()
	cleanupRunnerBinary()
	fmt.Print(ledger.Report())
	if tried, refused := ledger.Counts(); tried != refused && code == 0 {
		code = 1
	}
	os.Exit(code)
}
