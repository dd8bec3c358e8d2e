package prepuller

import (
	"fmt"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// BenchmarkPrePull compares Puller.Sync with pulling the same images
// directly through the CRI at the same concurrency, in the same run against
// the same containerd and loopback registry; each iteration removes the
// images before each side, and the sides alternate who goes first. It
// reports both throughputs and their ratio (the target is at least 0.9).
//
//	go test -run '^$' -bench BenchmarkPrePull -benchtime 5x ./prepuller
func BenchmarkPrePull(b *testing.B) {
	const images = 8
	reg := newTestRegistry(b)
	c := startContainerd(b, reg.host)
	var desired []Image
	for i := range images {
		desired = append(desired, Image{Ref: reg.push(b, fmt.Sprintf("bench/img%d:v1", i))})
	}
	p, err := New(c.Images, WithConcurrency(DefaultConcurrency), WithDiskThreshold(99))
	if err != nil {
		b.Fatal(err)
	}
	removeAll := func() {
		for _, img := range desired {
			if _, err := c.Images.RemoveImage(b.Context(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: img.Ref}}); err != nil {
				b.Fatalf("removing %s: %v", img.Ref, err)
			}
		}
	}
	direct := func() {
		sem := make(chan struct{}, DefaultConcurrency)
		var wg sync.WaitGroup
		for _, img := range desired {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if _, err := c.Images.PullImage(b.Context(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: img.Ref}}); err != nil {
					b.Errorf("pulling %s: %v", img.Ref, err)
				}
			})
		}
		wg.Wait()
	}
	puller := func() {
		if err := p.Sync(b.Context(), desired); err != nil {
			b.Fatal(err)
		}
		if s := p.Summary(); s.Present != images {
			b.Fatalf("after Sync: %s", s)
		}
	}
	timed := func(f func()) time.Duration {
		removeAll()
		start := time.Now()
		f()
		return time.Since(start)
	}
	var directTime, pullerTime time.Duration
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			directTime += timed(direct)
			pullerTime += timed(puller)
		} else {
			pullerTime += timed(puller)
			directTime += timed(direct)
		}
		i++
	}
	n := float64(i * images)
	b.ReportMetric(n/directTime.Seconds(), "direct-images/s")
	b.ReportMetric(n/pullerTime.Seconds(), "puller-images/s")
	b.ReportMetric(directTime.Seconds()/pullerTime.Seconds(), "puller/direct")
}
