package prepuller

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// FsUsageFunc returns the used and total bytes of the filesystem holding
// path.
type FsUsageFunc func(path string) (used, capacity uint64, err error)

// StatfsUsage measures the filesystem holding path with statfs, as the
// kubelet measures the image filesystem: used is capacity minus what is
// available to unprivileged users.
func StatfsUsage(path string) (used, capacity uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	capacity = st.Blocks * uint64(st.Bsize)
	avail := st.Bavail * uint64(st.Bsize)
	if avail > capacity {
		return 0, capacity, nil
	}
	return capacity - avail, capacity, nil
}
