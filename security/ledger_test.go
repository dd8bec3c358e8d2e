package security

import (
	"strings"
	"testing"
)

func TestLedgerReport(t *testing.T) {
	t.Parallel()
	var l Ledger
	l.Record(Outcome{Area: "runner", Name: "b", Refused: true})
	l.Record(Outcome{Area: "runner", Name: "a", Detail: "ran id as root"})
	tried, refused := l.Counts()
	if tried != 2 || refused != 1 {
		t.Fatalf("counts %d, %d; want 2, 1", tried, refused)
	}
	want := "SUCCEEDED runner: a: ran id as root\nattacks tried: 2, refused: 1\n"
	if got := l.Report(); got != want {
		t.Errorf("report %q, want %q", got, want)
	}
	if !strings.HasSuffix(new(Ledger).Report(), "attacks tried: 0, refused: 0\n") {
		t.Error("empty ledger report")
	}
}
