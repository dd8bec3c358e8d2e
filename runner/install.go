package runner

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Install copies the running executable to dest atomically: into a
// temporary file beside dest, mode 0755, synced, then renamed over dest.
// Parent directories are created. Running it again replaces the copy. The
// executable is read through /proc/self/exe, which works whatever path or
// mount namespace it was started from; os.Executable is the fallback.
func Install(dest string) error {
	if dest == "" {
		return errors.New("install needs a destination path")
	}
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		exe, eerr := os.Executable()
		if eerr != nil {
			return fmt.Errorf("finding the running executable: %w", errors.Join(err, eerr))
		}
		if src, err = os.Open(exe); err != nil {
			return fmt.Errorf("opening the running executable: %w", err)
		}
	}
	defer src.Close()
	return installFrom(src, dest)
}

func installFrom(src io.Reader, dest string) (err error) {
	dir := filepath.Dir(dest)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating directory %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dest)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating a temporary file in %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, src); err != nil {
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		return fmt.Errorf("making %s executable: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return fmt.Errorf("renaming into %s: %w", dest, err)
	}
	return nil
}
