// Package testcri starts a real containerd (bin/containerd, built by
// `make tools`) for one test, serving the CRI on a socket of its own and
// pulling only from the registries the test names: the CRI code of the
// pre-puller and the node agent is tested against it, not against a fake.
package testcri

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"sandbox.io/injector/internal/testenv"
)

// Containerd is a containerd started for one test: its own root, state and
// socket, serving the CRI, reaching only the registries given to it (every
// other host resolves to a closed loopback port).
type Containerd struct {
	// Root is containerd's root directory.
	Root string
	// Socket is its gRPC socket.
	Socket string
	// Images and Runtime are CRI clients of it. They outlive a Restart
	// (gRPC reconnects).
	Images  runtimeapi.ImageServiceClient
	Runtime runtimeapi.RuntimeServiceClient

	bin, dir, cfgPath string
	stop              func() // kills the running process and waits for it
}

// Start starts bin/containerd of the repository with a hosts.toml
// per registry (host:port, reached over plain HTTP), and stops it when the
// test ends. It skips (fails under CI) when the binary is missing or the
// test does not run as root.
func Start(t testing.TB, registries ...string) *Containerd {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "bin", "containerd")
	if _, err := os.Stat(bin); err != nil {
		testenv.Missing(t, "bin/containerd (run make tools)")
	}
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root, to run containerd")
	}
	// Unix socket paths are limited to 108 bytes: t.TempDir() with a long
	// test name can exceed that, so the directory is a short one of its own.
	dir, err := os.MkdirTemp("", "cri")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	// Registered before any run's: it prints the log once every process
	// is gone.
	t.Cleanup(func() {
		if t.Failed() {
			if raw, err := os.ReadFile(filepath.Join(dir, "containerd.log")); err == nil {
				t.Logf("containerd log:\n%s", raw)
			}
		}
	})
	writeHostsTOML(t, filepath.Join(dir, "certs.d"), registries)
	c := &Containerd{Root: filepath.Join(dir, "root"), Socket: filepath.Join(dir, "c.sock"), bin: bin, dir: dir,
		cfgPath: filepath.Join(dir, "config.toml")}
	if err := os.WriteFile(c.cfgPath, []byte(c.config(dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	exited := c.run(t)
	c.connect(t)
	c.waitServing(t, exited)
	return c
}

// Kill kills containerd with SIGKILL, as a crash or an OOM kill would, and
// waits for it to exit; its root and state stay. Pulls in flight fail.
func (c *Containerd) Kill(t testing.TB) {
	t.Helper()
	if c.stop == nil {
		t.Fatal("containerd is not running")
	}
	c.stop()
	c.stop = nil
}

// Restart starts a killed containerd again on the same root, state and
// socket, and waits until its CRI image service answers.
func (c *Containerd) Restart(t testing.TB) {
	t.Helper()
	if c.stop != nil {
		t.Fatal("containerd is still running")
	}
	c.waitServing(t, c.run(t))
}

// writeHostsTOML writes a hosts.toml under certsDir for each registry
// (plain HTTP, pull and resolve) and a default that sends every other host
// to a closed loopback port.
func writeHostsTOML(t testing.TB, certsDir string, registries []string) {
	t.Helper()
	hosts := map[string]string{"_default": "server = \"http://127.0.0.1:9\"\n"}
	for _, r := range registries {
		hosts[r] = fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+r, "http://"+r)
	}
	for h, body := range hosts {
		if err := os.MkdirAll(filepath.Join(certsDir, h), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(certsDir, h, "hosts.toml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// config is containerd's config.toml, with everything it writes under dir.
func (c *Containerd) config(dir string) string {
	return fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = %[5]q
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = %[6]q
  [plugins.'io.containerd.cri.v1.runtime']
    # No CAP_SYS_RESOURCE here (see e2e/cluster/up.sh).
    restrict_oom_score_adj = true
`, c.Root, filepath.Join(dir, "state"), c.Socket, c.Socket+".ttrpc", filepath.Join(dir, "opt"), filepath.Join(dir, "certs.d"))
}

// run starts containerd in c.dir, logging to dir/containerd.log (appended
// to across restarts, printed when the test failed), and kills it when the
// test ends. The channel receives its exit.
func (c *Containerd) run(t testing.TB) <-chan error {
	t.Helper()
	logFile, err := os.OpenFile(filepath.Join(c.dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(c.bin, "--config", c.cfgPath)
	cmd.Dir = c.dir
	// Killed with the test binary, even when it dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting containerd: %v", err)
	}
	exited := make(chan error, 1)
	waited := make(chan struct{})
	go func() {
		exited <- cmd.Wait()
		close(waited)
	}()
	stop := sync.OnceFunc(func() {
		_ = cmd.Process.Kill()
		<-waited
		_ = logFile.Close()
	})
	c.stop = stop
	t.Cleanup(stop)
	return exited
}

// connect makes c's CRI clients.
func (c *Containerd) connect(t testing.TB) {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+c.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c.Images = runtimeapi.NewImageServiceClient(conn)
	c.Runtime = runtimeapi.NewRuntimeServiceClient(conn)
}

// waitServing waits until the CRI image service answers, failing the test
// if containerd exits first.
func (c *Containerd) waitServing(t testing.TB, exited <-chan error) {
	t.Helper()
	// Generous for a loaded machine.
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := c.Images.ListImages(t.Context(), &runtimeapi.ListImagesRequest{})
		if err == nil {
			return
		}
		select {
		case err := <-exited:
			t.Fatalf("containerd exited before serving: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd's CRI image service is not serving after a minute: %v", err)
		}
	}
}
