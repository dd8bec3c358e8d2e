package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"sandbox.io/injector/agent"
	"sandbox.io/injector/internal/envflag"
	"sandbox.io/injector/prepuller"
)

// prepullOptions are the pre-puller's flags.
type prepullOptions struct {
	namespace        string
	configMap        string
	runnerImage      string
	learn            bool
	learnMax         int
	learnForgetAfter time.Duration
	interval         time.Duration
	concurrency      int
	diskThreshold    float64
}

func (o *prepullOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.namespace, "namespace", "", "The agent's namespace, where --prepull-configmap lives (env SANDBOX_NAMESPACE, else POD_NAMESPACE, which the chart sets from the downward API).")
	envflag.Also(fs, "namespace", "POD_NAMESPACE")
	fs.StringVar(&o.configMap, "prepull-configmap", "", "Name of the ConfigMap holding the image list to pre-pull (key \"images\"), watched for changes; empty for none.")
	fs.StringVar(&o.runnerImage, "runner-image", "", "The runner image, pre-pulled on every node; empty for none.")
	fs.BoolVar(&o.learn, "learn-images", false, "Also pre-pull the images of injected pods seen anywhere in the cluster.")
	fs.IntVar(&o.learnMax, "learn-max-images", agent.DefaultLearnMax, "The most learned images kept (the most recently seen).")
	fs.DurationVar(&o.learnForgetAfter, "learn-forget-after", agent.DefaultLearnForgetAfter, "How long a learned image that no pod uses any more stays pre-pulled.")
	fs.DurationVar(&o.interval, "prepull-interval", agent.DefaultPrePullInterval, "How often the images are checked when nothing changes (an image removed by the kubelet is pulled again).")
	fs.IntVar(&o.concurrency, "prepull-concurrency", prepuller.DefaultConcurrency, "How many pulls run at once on the node.")
	fs.Float64Var(&o.diskThreshold, "prepull-disk-threshold", prepuller.DefaultDiskThreshold, "Use of the image filesystem, in percent, above which pulls pause; 100 never pauses.")
}

func (o *prepullOptions) validate() error {
	var errs []error
	if o.configMap != "" {
		if o.namespace == "" {
			errs = append(errs, errors.New("--prepull-configmap needs --namespace (or POD_NAMESPACE)"))
		} else if msgs := validation.IsDNS1123Label(o.namespace); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--namespace %q: %v", o.namespace, msgs))
		}
		if msgs := validation.IsDNS1123Subdomain(o.configMap); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--prepull-configmap %q: %v", o.configMap, msgs))
		}
	}
	if o.runnerImage != "" {
		if _, err := name.ParseReference(o.runnerImage); err != nil {
			errs = append(errs, fmt.Errorf("--runner-image: %w", err))
		}
	}
	if o.learnMax < 1 {
		errs = append(errs, fmt.Errorf("--learn-max-images %d is below 1", o.learnMax))
	}
	if o.learnForgetAfter < time.Minute {
		errs = append(errs, fmt.Errorf("--learn-forget-after %s is under 1m", o.learnForgetAfter))
	}
	if o.interval < time.Second {
		errs = append(errs, fmt.Errorf("--prepull-interval %s is under 1s", o.interval))
	}
	if o.concurrency < 1 || o.concurrency > 64 {
		errs = append(errs, fmt.Errorf("--prepull-concurrency %d is not in [1, 64]", o.concurrency))
	}
	if o.diskThreshold <= 0 || o.diskThreshold > 100 {
		errs = append(errs, fmt.Errorf("--prepull-disk-threshold %g is not in (0, 100]", o.diskThreshold))
	}
	return errors.Join(errs...)
}

// addPrePuller adds the pre-pull loop to mgr: a Puller over the agent's CRI
// connection, its metrics on controller-runtime's registry, and its own
// cache of the image list ConfigMap, the SandboxPools and (when learning)
// the pods.
func addPrePuller(mgr manager.Manager, cfg *rest.Config, o *options, conn grpc.ClientConnInterface, direct client.Client, log *slog.Logger) error {
	po := &o.prepull
	observer := agent.NewPullObserver(runtimeapi.NewImageServiceClient(conn), nil)
	puller, err := prepuller.New(observer,
		prepuller.WithConcurrency(po.concurrency),
		prepuller.WithDiskThreshold(po.diskThreshold),
		prepuller.WithRegisterer(metrics.Registry),
	)
	if err != nil {
		return err
	}
	var list types.NamespacedName
	if po.configMap != "" {
		list = types.NamespacedName{Namespace: po.namespace, Name: po.configMap}
	}
	c, err := agent.NewPrePullCache(cfg, agent.PrePullCacheOptions{ImageList: list, Learn: po.learn})
	if err != nil {
		return err
	}
	p, err := agent.NewPrePuller(agent.PrePullConfig{
		NodeName:         o.nodeName,
		Puller:           puller,
		Observer:         observer,
		Client:           direct,
		Cache:            c,
		ImageList:        list,
		RunnerImage:      po.runnerImage,
		Learn:            po.learn,
		LearnMax:         po.learnMax,
		LearnForgetAfter: po.learnForgetAfter,
		Interval:         po.interval,
		Registerer:       metrics.Registry,
		Log:              log.With("component", "prepuller"),
	})
	if err != nil {
		return err
	}
	return p.SetupWithManager(mgr)
}
