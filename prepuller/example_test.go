package prepuller_test

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"sandbox.io/injector/prepuller"
)

// Example shows the node agent's use: one Puller over the runtime's socket,
// a Sync per period (or per change of the desired set), and the summary it
// publishes on its Node. It is compiled, not run: it needs a runtime.
func Example() {
	run := func(ctx context.Context, socket string, refs []string, secrets []*corev1.Secret) error {
		conn, err := prepuller.Dial(socket)
		if err != nil {
			return err
		}
		defer conn.Close()
		p, err := prepuller.New(runtimeapi.NewImageServiceClient(conn),
			prepuller.WithConcurrency(2),
			prepuller.WithDiskThreshold(80),
			prepuller.WithRegisterer(prometheus.NewRegistry()),
		)
		if err != nil {
			return err
		}
		var desired []prepuller.Image
		for _, ref := range refs {
			auth, err := prepuller.AuthFor(ref, secrets)
			if err != nil {
				return err
			}
			desired = append(desired, prepuller.Image{Ref: ref, Auth: auth})
		}
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			if err := p.Sync(ctx, desired); err != nil {
				return err
			}
			fmt.Println(p.Summary()) // e.g. "present 2/3, failed 1 (ref: error)"
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
	}
	_ = run
}
