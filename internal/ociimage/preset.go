package ociimage

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"strings"
)

// NonRootUID is the numeric user (and group) of every project image: the
// "nonroot" user of distroless images, with no /etc/passwd lookup needed.
const NonRootUID = 65532

// Paths and entrypoints that other components rely on.
const (
	// RunnerDir is the runner image's own directory; the webhook's init
	// container copies from it and an image volume mounts it.
	RunnerDir = "/sandbox-runner"
	// RunnerPath is the runner binary in the runner image.
	RunnerPath = RunnerDir + "/sandbox-runner"
)

// StaticOptions describe a scratch image around one static binary.
type StaticOptions struct {
	// Binary is the static executable on disk.
	Binary string
	// Path is where the binary goes in the image; default "/" + its base
	// name.
	Path string
	// CACerts is a CA bundle on disk copied to /etc/ssl/certs/ca-certificates.crt;
	// empty means none.
	CACerts string
	// Root runs the image as root instead of NonRootUID (the pause image
	// needs no root; test images may).
	Root bool
	// Cmd is the image's CMD (the ENTRYPOINT is the binary).
	Cmd []string
	// Env is the image's environment; default a PATH.
	Env []string
}

// Static returns the spec of a scratch image that runs one static binary:
// the binary (0755), an optional CA bundle, /tmp (1777), and minimal
// /etc/passwd and /etc/group naming root and the non-root user.
func Static(o StaticOptions) (Spec, error) {
	if o.Binary == "" {
		return Spec{}, fmt.Errorf("building static image: no binary")
	}
	if _, err := os.Stat(o.Binary); err != nil {
		return Spec{}, fmt.Errorf("building static image: %w", err)
	}
	p := o.Path
	if p == "" {
		p = "/" + path.Base(o.Binary)
	}
	files := []File{
		{Path: p, Mode: 0o755, Source: o.Binary},
		{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte(fmt.Sprintf(
			"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonRootUID, NonRootUID))},
		{Path: "/etc/group", Mode: 0o644, Data: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", NonRootUID))},
		{Path: "/home/nonroot", Mode: fs.ModeDir | 0o700, UID: NonRootUID, GID: NonRootUID},
	}
	if o.CACerts != "" {
		files = append(files, File{Path: "/etc/ssl/certs/ca-certificates.crt", Mode: 0o644, Source: o.CACerts})
	}
	user := fmt.Sprintf("%d:%d", NonRootUID, NonRootUID)
	if o.Root {
		user = "0:0"
	}
	env := o.Env
	if env == nil {
		env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	}
	return Spec{
		Files: files,
		Config: Config{
			Entrypoint: []string{p},
			Cmd:        o.Cmd,
			User:       user,
			Env:        env,
			WorkingDir: "/",
		},
	}, nil
}

// Runner returns the spec of the runner image: the binary at RunnerPath in
// its own directory (so that it can be mounted or copied alone), mode 0755,
// user NonRootUID, entrypoint [RunnerPath].
func Runner(binary, caCerts string) (Spec, error) {
	return Static(StaticOptions{Binary: binary, Path: RunnerPath, CACerts: caCerts})
}

// Busybox returns the spec of a shell image made of a static busybox: the
// binary at /bin/busybox and one symlink per applet it lists (so /bin/sh
// exists), running as root with CMD ["/bin/sh"].
func Busybox(binary string) (Spec, error) {
	out, err := exec.Command(binary, "--list-full").Output()
	if err != nil {
		return Spec{}, fmt.Errorf("listing applets of %s: %w", binary, err)
	}
	files := []File{
		{Path: "/bin/busybox", Mode: 0o755, Source: binary},
		{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		{Path: "/root", Mode: fs.ModeDir | 0o700},
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte(fmt.Sprintf(
			"root:x:0:0:root:/root:/bin/sh\nnonroot:x:%d:%d:nonroot:/tmp:/bin/sh\n", NonRootUID, NonRootUID))},
		{Path: "/etc/group", Mode: 0o644, Data: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", NonRootUID))},
	}
	seen := map[string]bool{"/bin/busybox": true}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		applet := strings.TrimSpace(sc.Text())
		if applet == "" {
			continue
		}
		p := "/" + strings.TrimPrefix(applet, "/")
		if seen[p] {
			continue
		}
		seen[p] = true
		files = append(files, File{Path: p, Mode: fs.ModeSymlink | 0o777, Target: "/bin/busybox"})
	}
	if !seen["/bin/sh"] {
		return Spec{}, fmt.Errorf("building busybox image: %s has no sh applet", binary)
	}
	return Spec{
		Files: files,
		Config: Config{
			Cmd:        []string{"/bin/sh"},
			User:       "0:0",
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			WorkingDir: "/",
		},
	}, nil
}
