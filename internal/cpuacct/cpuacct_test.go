package cpuacct

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// comm may hold spaces and parentheses; the times follow the last ')'.
	line := "4242 (kube (api) server) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 12 0 987654 0 0\n"
	key, got, err := parseStat(4242, []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if key != (procKey{pid: 4242, start: 987654}) {
		t.Errorf("key %+v", key)
	}
	if got.comm != "kube (api) server" || got.ppid != 1 || got.own != 3*time.Second || got.children != 100*time.Millisecond {
		t.Errorf("parsed %+v, want comm %q, own 3s (250+50 ticks), children 100ms (7+3 ticks)", got, "kube (api) server")
	}
	if _, _, err := parseStat(1, []byte("1 (short) S 1 2 3")); err == nil {
		t.Error("a line with too few fields parsed")
	}
}

func TestUse(t *testing.T) {
	before := &Sample{procs: map[procKey]procTimes{
		{1, 10}: {comm: "containerd", own: time.Second},
		{2, 20}: {comm: "kube-apiserver", own: 5 * time.Second},
		// Reaped by containerd in between, after 40ms, 30ms of them in the
		// interval: containerd's children's time grows by all 40ms.
		{3, 30}: {comm: "runc", ppid: 1, own: 10 * time.Millisecond},
		{4, 40}: {comm: "old", ppid: 99, own: time.Second}, // PID 4 reused in between; its parent gone too
	}}
	after := &Sample{procs: map[procKey]procTimes{
		{1, 10}: {comm: "containerd", own: 1100 * time.Millisecond, children: 40 * time.Millisecond},
		{2, 20}: {comm: "kube-apiserver", own: 5500 * time.Millisecond},
		{4, 41}: {comm: "new", own: 30 * time.Millisecond},
	}}
	got := Use(before, after)
	want := []Process{{"kube-apiserver", 500 * time.Millisecond}, {"containerd", 130 * time.Millisecond}, {"new", 30 * time.Millisecond}}
	if len(got) != len(want) {
		t.Fatalf("Use = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Use[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

// TestReadSeesThisProcess burns 200 ms of this process's CPU between
// two samples and finds at least most of it on this test binary's line.
func TestReadSeesThisProcess(t *testing.T) {
	before, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	spent := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := spent()
	x := 0
	for spent()-start < 200*time.Millisecond {
		for i := range 100000 {
			x += i
		}
	}
	_ = x
	after, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	comm, err := os.ReadFile(filepath.Join("/proc", "self", "comm"))
	if err != nil {
		t.Fatal(err)
	}
	name := string(comm[:len(comm)-1])
	for _, u := range Use(before, after) {
		if u.Name == name {
			if u.CPU < 150*time.Millisecond {
				t.Errorf("%s used %s, want at least 150ms of the 200ms burnt", name, u.CPU)
			}
			var a Account
			a.Add(before, after)
			if line := a.Format(5, 0); !strings.Contains(line, name) || strings.Contains(line, "per claim") {
				t.Errorf("Format(5, 0): %q does not name %s, or counts per claim", line, name)
			}
			return
		}
	}
	t.Errorf("no line for %s in %v", name, Use(before, after))
}

func TestTreeKeepsOnlyDescendants(t *testing.T) {
	s := &Sample{procs: map[procKey]procTimes{
		{1, 1}:   {comm: "init"},
		{10, 5}:  {comm: "go-test", ppid: 1},
		{11, 6}:  {comm: "kube-apiserver", ppid: 10},
		{12, 7}:  {comm: "sandbox-runner", ppid: 10},
		{13, 8}:  {comm: "true", ppid: 12},
		{20, 9}:  {comm: "kube-router", ppid: 1},
		{21, 10}: {comm: "iptables", ppid: 20},
	}}
	got := map[string]bool{}
	for _, t := range s.Tree(10).procs {
		got[t.comm] = true
	}
	want := map[string]bool{"go-test": true, "kube-apiserver": true, "sandbox-runner": true, "true": true}
	if len(got) != len(want) {
		t.Fatalf("Tree(10) = %v, want %v", got, want)
	}
	for c := range want {
		if !got[c] {
			t.Errorf("Tree(10) lacks %s: %v", c, got)
		}
	}
}

func TestFormatPerClaim(t *testing.T) {
	var a Account
	before := &Sample{At: time.Unix(0, 0), procs: map[procKey]procTimes{{2, 2}: {comm: "kube-apiserver"}, {3, 3}: {comm: "etcd"}}}
	after := &Sample{At: time.Unix(1, 0), procs: map[procKey]procTimes{{2, 2}: {comm: "kube-apiserver", own: 300 * time.Millisecond}, {3, 3}: {comm: "etcd", own: 100 * time.Millisecond}}}
	a.Add(before, after)
	if a.Total() != 400*time.Millisecond || a.Of("etcd") != 100*time.Millisecond {
		t.Errorf("Total %s, Of(etcd) %s; want 400ms and 100ms", a.Total(), a.Of("etcd"))
	}
	want := "0.40 cores over 1s, 20.0 ms of CPU per claim: kube-apiserver 0.30 etcd 0.10"
	if got := a.Format(5, 20); got != want {
		t.Errorf("Format(5, 20) = %q, want %q", got, want)
	}
}
