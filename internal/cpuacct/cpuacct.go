// Package cpuacct accounts the CPU time processes of this machine use,
// read from /proc, by command: the benchmarks' way to tell what a claim
// costs the API server, etcd, the runners and the cluster's own
// components, all of which share this machine's cores.
package cpuacct

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc/PID/stat's times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// Sample is the CPU time every process of the machine has used, read
// from /proc: the local cluster runs on this machine, so a phase's share
// of each component (the API server, etcd, the kubelet, containerd, the
// controller, the agents) is the difference of two samples.
type Sample struct {
	At time.Time
	// procs holds each live process's own time and the time of its
	// children it reaped, by PID and start time (a PID can be reused).
	procs map[procKey]procTimes
}

type procKey struct {
	pid   int
	start uint64
}

type procTimes struct {
	comm     string
	ppid     int
	own      time.Duration // utime + stime
	children time.Duration // cutime + cstime: children waited for
}

// Tree is the part of s made of the process pid and its descendants (the
// API server, etcd and runners a test starts are its children); a process
// whose parent has ended is not counted.
func (s *Sample) Tree(pid int) *Sample {
	children := map[int][]procKey{}
	for k, t := range s.procs {
		children[t.ppid] = append(children[t.ppid], k)
	}
	out := &Sample{At: s.At, procs: map[procKey]procTimes{}}
	for k, t := range s.procs {
		if k.pid == pid {
			out.procs[k] = t
		}
	}
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		for _, k := range children[queue[0]] {
			if _, seen := out.procs[k]; !seen {
				out.procs[k] = s.procs[k]
				queue = append(queue, k.pid)
			}
		}
	}
	return out
}

// Read reads every process's CPU times from /proc.
func Read() (*Sample, error) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("reading /proc: %w", err)
	}
	s := &Sample{At: time.Now(), procs: make(map[procKey]procTimes, len(dirs))}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		key, t, err := parseStat(pid, b)
		if err != nil {
			return nil, err
		}
		s.procs[key] = t
	}
	return s, nil
}

// parseStat reads comm, utime, stime, cutime, cstime and starttime from a
// /proc/PID/stat line (comm may hold spaces and parentheses: it ends at
// the last ')').
func parseStat(pid int, b []byte) (procKey, procTimes, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procKey{}, procTimes{}, fmt.Errorf("/proc/%d/stat: no (comm) in %q", pid, b)
	}
	f := strings.Fields(string(b[end+1:]))
	// Fields after comm start at field 3 (state): ppid is field 4, utime
	// field 14.
	const ppid, utime, stime, cutime, cstime, starttime = 4 - 3, 14 - 3, 15 - 3, 16 - 3, 17 - 3, 22 - 3
	if len(f) <= starttime {
		return procKey{}, procTimes{}, fmt.Errorf("/proc/%d/stat: %d fields after comm, want more than %d", pid, len(f), starttime)
	}
	var v [6]uint64
	for i, idx := range []int{utime, stime, cutime, cstime, starttime, ppid} {
		n, err := strconv.ParseUint(f[idx], 10, 64)
		if err != nil {
			return procKey{}, procTimes{}, fmt.Errorf("/proc/%d/stat field %d: %w", pid, idx+3, err)
		}
		v[i] = n
	}
	return procKey{pid: pid, start: v[4]}, procTimes{
		comm:     string(b[open+1 : end]),
		ppid:     int(v[5]),
		own:      time.Duration(v[0]+v[1]) * clockTick,
		children: time.Duration(v[2]+v[3]) * clockTick,
	}, nil
}

// Process is one command's CPU time in a phase.
type Process struct {
	Name string
	CPU  time.Duration
}

// Use is what each command used between two samples, most first. A
// process that started in between counts whole. One that ended was reaped
// by its parent, whose children's time then holds the ended process's
// whole life: what it had used before the first sample is taken off that
// parent's line again (the parent of the first sample; a process whose
// parent ended too is taken off its own line), so that short-lived helpers
// (runc, iptables, the commands run in sandboxes) land on their parent's
// line and long-lived processes that ended (a deleted pod's) count only
// their last moments.
func Use(before, after *Sample) []Process {
	by := map[string]time.Duration{}
	for k, t := range after.procs {
		prev, ok := before.procs[k]
		if !ok {
			by[t.comm] += t.own + t.children
			continue
		}
		by[t.comm] += t.own - prev.own + t.children - prev.children
	}
	parents := make(map[int]string, len(before.procs))
	for k, t := range before.procs {
		parents[k.pid] = t.comm
	}
	for k, t := range before.procs {
		if _, ok := after.procs[k]; ok {
			continue
		}
		name, ok := parents[t.ppid]
		if !ok {
			name = t.comm
		}
		by[name] -= t.own + t.children
	}
	out := make([]Process, 0, len(by))
	for name, d := range by {
		if d > 0 {
			out = append(out, Process{Name: name, CPU: d})
		}
	}
	slices.SortFunc(out, func(a, b Process) int {
		return cmp.Or(cmp.Compare(b.CPU, a.CPU), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// Account adds up the CPU each command used over several intervals
// (the timed claims of a phase, leaving out the waits between them). The
// zero value is empty.
type Account struct {
	// Tree, when set, counts only that process and its descendants.
	Tree int

	wall time.Duration
	by   map[string]time.Duration
}

// Add counts the interval between two samples.
func (a *Account) Add(before, after *Sample) {
	if a.by == nil {
		a.by = map[string]time.Duration{}
	}
	a.wall += after.At.Sub(before.At)
	for _, u := range Use(before, after) {
		a.by[u.Name] += u.CPU
	}
}

// During runs f and counts the CPU used meanwhile; a nil account only runs
// f. A failed sample leaves the interval out of the count.
func (a *Account) During(f func() error) error {
	if a == nil {
		return f()
	}
	before, berr := Read()
	err := f()
	after, aerr := Read()
	if berr == nil && aerr == nil {
		if a.Tree != 0 {
			before, after = before.Tree(a.Tree), after.Tree(a.Tree)
		}
		a.Add(before, after)
	}
	return err
}

// Total is the CPU all commands used over the intervals counted.
func (a *Account) Total() time.Duration {
	var total time.Duration
	for _, d := range a.by {
		total += d
	}
	return total
}

// Of is the CPU the command name used over the intervals counted.
func (a *Account) Of(name string) time.Duration { return a.by[name] }

// Format says, in one line, how many cores the machine's processes kept
// busy over the intervals counted (1.00 = one core), with ops > 0 the CPU
// time that makes per op (a claim: the CPU the machine spent while the
// claims ran, whoever spent it), and the top n commands' shares.
func (a *Account) Format(n, ops int) string {
	use := make([]Process, 0, len(a.by))
	total := a.Total()
	for name, d := range a.by {
		use = append(use, Process{Name: name, CPU: d})
	}
	slices.SortFunc(use, func(x, y Process) int {
		return cmp.Or(cmp.Compare(y.CPU, x.CPU), cmp.Compare(x.Name, y.Name))
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%.2f cores over %s", cores(total, a.wall), a.wall.Round(time.Millisecond))
	if ops > 0 {
		fmt.Fprintf(&b, ", %.1f ms of CPU per claim", float64((total/time.Duration(ops)).Microseconds())/1000)
	}
	b.WriteString(":")
	for i, u := range use {
		if i == n {
			break
		}
		fmt.Fprintf(&b, " %s %.2f", u.Name, cores(u.CPU, a.wall))
	}
	return b.String()
}

func cores(d, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return d.Seconds() / wall.Seconds()
}
