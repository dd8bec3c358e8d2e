package claim

import (
	"bytes"
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/pool"
	"sandbox.io/injector/runner/api"
	runnerclient "sandbox.io/injector/runner/client"
)

// DefaultGrace is how long a claim waits for a warm pod to become claimable
// before it falls back to a cold pod.
const DefaultGrace = 2 * time.Second

// handTimeout bounds the runner's POST /claim.
const handTimeout = 10 * time.Second

// ErrNoSandbox means no warm pod of the pool was claimable within the grace
// period and the cold fallback was not allowed.
var ErrNoSandbox = errors.New("no warm sandbox claimable")

// Options are the settings of one claim.
type Options struct {
	// Env is added to the environment of every command the claimant runs
	// in the sandbox (the runner keeps it; the pod spec never holds it).
	Env map[string]string
	// Claimant names who claims (sandbox.io/claimed-by and the runner's
	// /status); default Config.Claimant.
	Claimant string
	// Grace is how long to wait for a warm pod when none is claimable;
	// default DefaultGrace. Negative means do not wait.
	Grace time.Duration
	// NoCold forbids the cold fallback: after Grace the claim fails with
	// ErrNoSandbox instead of creating a pod.
	NoCold bool
	// Transport reaches the runner; default Config.Transport.
	Transport Transport
	// Files are written into the sandbox's work directory right after the
	// claim, with the claimant's token, so that a warm pod never held them
	// before. If one cannot be written, the sandbox is released and the
	// claim fails.
	Files []File
}

// File is a file a claim writes into the sandbox.
type File struct {
	// Path is relative to the runner's work directory; parents are created.
	Path string
	// Data is the file's content.
	Data []byte
	// Mode is the permission bits; 0 means 0644.
	Mode uint32
}

// Timings says where a claim spent its time.
type Timings struct {
	// Find is listing, probing, losing races and waiting for a claimable
	// warm pod; for a cold claim it includes the grace period.
	Find time.Duration
	// Adopt is the conditional update that took the pod (warm), or
	// creating the pod and waiting for it to be Ready with a runner
	// answering (cold).
	Adopt time.Duration
	// Hand is storing the claimant's token and the runner's POST /claim.
	Hand time.Duration
	// Total is the whole claim.
	Total time.Duration
}

// Claim takes a sandbox of pool poolName in namespace: a warm pod when one
// is claimable within the grace period, else (unless opts.NoCold) a new
// cold pod. The sandbox's runner then accepts only Sandbox.Token.
func (c *Claimer) Claim(ctx context.Context, namespace, poolName string, opts Options) (*Sandbox, error) {
	start := time.Now()
	sb, err := c.claim(ctx, namespace, poolName, opts, start)
	if err == nil && len(opts.Files) > 0 {
		if err = c.giveFiles(ctx, sb, opts.Files); err != nil {
			sb = nil
		}
	}
	total := time.Since(start)
	log := c.cfg.Logger.With("namespace", namespace, "pool", poolName)
	if err != nil {
		c.metrics.observe(ResultFailed, total.Seconds())
		log.Info("claim failed", "error", err, "duration", total)
		return nil, err
	}
	sb.Timings.Total = total
	c.metrics.observe(sb.Origin, total.Seconds())
	log.Info("claimed", "pod", sb.Pod, "node", sb.Node, "origin", sb.Origin, "duration", total, "lost", sb.Lost, "skipped", sb.Skipped)
	return sb, nil
}

func (c *Claimer) claim(ctx context.Context, namespace, poolName string, opts Options, start time.Time) (*Sandbox, error) {
	if opts.Claimant == "" {
		opts.Claimant = c.cfg.Claimant
	}
	if opts.Grace == 0 {
		opts.Grace = DefaultGrace
	}
	if opts.Transport == "" {
		opts.Transport = c.cfg.Transport
	}
	if _, err := ParseTransport(string(opts.Transport)); err != nil {
		return nil, fmt.Errorf("claiming from pool %s/%s: %w", namespace, poolName, err)
	}
	// Refuse what the runner would refuse before taking a pod for it.
	probe := api.ClaimRequest{Claimant: opts.Claimant, Token: strings.Repeat("x", api.MinClaimTokenLength), Env: opts.Env}
	if err := probe.Validate(); err != nil {
		return nil, fmt.Errorf("claiming from pool %s/%s: %w", namespace, poolName, err)
	}
	for _, f := range opts.Files {
		if clean, err := api.CleanPath(f.Path); err != nil || clean == "." {
			return nil, fmt.Errorf("claiming from pool %s/%s: file %q is not a file path relative to the work directory: %v", namespace, poolName, f.Path, err)
		}
	}

	var p v1alpha1.SandboxPool
	if err := c.pools.Get().Namespace(namespace).Resource("sandboxpools").Name(poolName).Do(ctx).Into(&p); err != nil {
		return nil, fmt.Errorf("getting pool %s/%s: %w", namespace, poolName, err)
	}
	st := &claimState{dead: map[types.UID]bool{}}
	deadline := start.Add(max(opts.Grace, 0))
	for {
		sb, rv, err := c.tryWarm(ctx, &p, opts, st)
		if err != nil || sb != nil {
			if sb != nil {
				sb.Lost, sb.Skipped = st.lost, st.skipped
			}
			return sb, err
		}
		if !time.Now().Before(deadline) {
			break
		}
		if err := c.waitClaimable(ctx, &p, rv, deadline, st); err != nil {
			return nil, err
		}
	}
	if opts.NoCold {
		waited := "without waiting"
		if opts.Grace > 0 {
			waited = "after waiting " + opts.Grace.String()
		}
		return nil, fmt.Errorf("claiming from pool %s/%s %s (%d lost to other claimers, %d runners not answering): %w",
			namespace, poolName, waited, st.lost, st.skipped, ErrNoSandbox)
	}
	found := time.Since(start)
	sb, err := c.claimCold(ctx, &p, opts)
	if err != nil {
		return nil, err
	}
	sb.Timings.Find = found
	sb.Lost, sb.Skipped = st.lost, st.skipped
	return sb, nil
}

// poolToken returns the pool token of pod, read once per Secret per claim.
func (st *claimState) poolToken(ctx context.Context, c *Claimer, pod *corev1.Pod) (string, error) {
	name := TokenSecretName(pod, c.cfg.TokenSecret)
	if tok, ok := st.tokens[name]; ok {
		return tok, nil
	}
	tok, err := c.poolToken(ctx, pod)
	if err != nil {
		return "", err
	}
	if st.tokens == nil {
		st.tokens = map[string]string{}
	}
	st.tokens[name] = tok
	return tok, nil
}

type claimState struct {
	tokens map[string]string
	// dead are pods whose runner did not answer or refused the claim in
	// this claim; they are not tried again.
	dead    map[types.UID]bool
	lost    int
	skipped int
	find    time.Duration
}

// tryWarm lists the pool's warm pods and tries the claimable ones in order
// until one is taken. It returns the list's resourceVersion for a watch
// when none was.
func (c *Claimer) tryWarm(ctx context.Context, p *v1alpha1.SandboxPool, opts Options, st *claimState) (*Sandbox, string, error) {
	t0 := time.Now()
	// ResourceVersion "0": served from the API server's watch cache at
	// once. A consistent list waits for the cache to catch up with etcd,
	// which took 70-90 ms per claim on the local cluster. Staleness is
	// safe here: a pod claimed since loses the conditional update (next
	// candidate), and a pod created since arrives on the watch that starts
	// at this list's resourceVersion.
	list, err := c.kube.CoreV1().Pods(p.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector:   pool.WarmSelector(p.Name).String(),
		ResourceVersion: "0",
	})
	if err != nil {
		return nil, "", fmt.Errorf("listing warm pods of pool %s/%s: %w", p.Namespace, p.Name, err)
	}
	for _, pod := range Candidates(p, list.Items) {
		if st.dead[pod.UID] {
			continue
		}
		rc, addr, err := c.runnerFor(pod, opts.Transport, "")
		if err != nil {
			st.dead[pod.UID] = true
			st.skipped++
			c.cfg.Logger.Debug("skipping pod", "namespace", pod.Namespace, "pod", pod.Name, "error", err)
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, c.cfg.ProbeTimeout)
		err = rc.Healthz(pctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, "", fmt.Errorf("claiming from pool %s/%s: %w", p.Namespace, p.Name, ctx.Err())
			}
			st.dead[pod.UID] = true
			st.skipped++
			c.cfg.Logger.Debug("skipping pod whose runner does not answer", "namespace", pod.Namespace, "pod", pod.Name, "error", err)
			continue
		}
		// Read the pool token before taking the pod: a missing Secret is
		// the pool's problem, not this pod's, and must not cost a pod.
		poolToken, err := st.poolToken(ctx, c, pod)
		if err != nil {
			return nil, "", err
		}
		st.find += time.Since(t0)
		t1 := time.Now()
		taken, err := c.adopt(ctx, pod, opts.Claimant)
		if err != nil {
			return nil, "", err
		}
		if taken == nil {
			st.lost++
			c.cfg.Logger.Debug("lost the race for a pod", "namespace", pod.Namespace, "pod", pod.Name)
			t0 = time.Now()
			continue
		}
		adopt := time.Since(t1)
		t2 := time.Now()
		sb, err := c.hand(ctx, taken, rc, addr, poolToken, v1alpha1.OriginWarm, opts)
		if err != nil {
			// The pod is ours but unusable: release it rather than leave a
			// claimed pod nobody holds. A runner already claimed (409, a
			// stale warm label) is that pod's problem: try the next one.
			// Anything else (a wrong pool token, a runner without /claim)
			// would fail on every pod, so it ends the claim.
			st.dead[pod.UID] = true
			st.skipped++
			c.cfg.Logger.Info("releasing a claimed pod whose runner refused the claim", "namespace", pod.Namespace, "pod", pod.Name, "error", err)
			if derr := c.deletePod(ctx, taken); derr != nil {
				return nil, "", errors.Join(err, derr)
			}
			if runnerclient.StatusCode(err) != http.StatusConflict {
				return nil, "", err
			}
			t0 = time.Now()
			continue
		}
		sb.Timings.Find, sb.Timings.Adopt, sb.Timings.Hand = st.find, adopt, time.Since(t2)
		return sb, "", nil
	}
	st.find += time.Since(t0)
	return nil, list.ResourceVersion, nil
}

// Candidates returns the pods a claim may take, in the order it tries them:
// the nodes with the most claimable pods first, in random order within a
// node, so that racing claimers spread over the pods instead of all
// fighting for the first.
func Candidates(p *v1alpha1.SandboxPool, pods []corev1.Pod) []*corev1.Pod {
	byNode := map[string][]*corev1.Pod{}
	for i := range pods {
		if pool.Claimable(p, &pods[i]) {
			n := pods[i].Spec.NodeName
			byNode[n] = append(byNode[n], &pods[i])
		}
	}
	nodes := slices.Collect(maps.Keys(byNode))
	// Ties between nodes are broken at random too, so that racing claimers
	// do not all start on the same node.
	rand.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
	slices.SortStableFunc(nodes, func(a, b string) int { return cmp.Compare(len(byNode[b]), len(byNode[a])) })
	var out []*corev1.Pod
	for _, n := range nodes {
		ps := byNode[n]
		rand.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
		out = append(out, ps...)
	}
	return out
}

// adopt takes pod in one update conditioned on the resourceVersion it was
// read at. It returns nil, nil when another claimer was first (409
// Conflict) or the pod is gone.
func (c *Claimer) adopt(ctx context.Context, pod *corev1.Pod, claimant string) (*corev1.Pod, error) {
	up := pod.DeepCopy()
	up.Labels[v1alpha1.LabelState] = v1alpha1.StateClaimed
	up.Labels[v1alpha1.LabelOrigin] = v1alpha1.OriginWarm
	if up.Annotations == nil {
		up.Annotations = map[string]string{}
	}
	up.Annotations[v1alpha1.AnnotationClaimedBy] = claimant
	up.Annotations[v1alpha1.AnnotationClaimedAt] = time.Now().UTC().Format(time.RFC3339Nano)
	got, err := c.kube.CoreV1().Pods(pod.Namespace).Update(ctx, up, metav1.UpdateOptions{})
	switch {
	case err == nil:
		return got, nil
	case apierrors.IsConflict(err), apierrors.IsNotFound(err):
		return nil, nil
	default:
		return nil, fmt.Errorf("claiming pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
}

// waitClaimable watches the pool's warm pods from resourceVersion rv until
// one is claimable (and not known dead) or deadline passes.
func (c *Claimer) waitClaimable(ctx context.Context, p *v1alpha1.SandboxPool, rv string, deadline time.Time, st *claimState) error {
	t0 := time.Now()
	defer func() { st.find += time.Since(t0) }()
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	w, err := c.kube.CoreV1().Pods(p.Namespace).Watch(wctx, metav1.ListOptions{
		LabelSelector:       pool.WarmSelector(p.Name).String(),
		ResourceVersion:     rv,
		AllowWatchBookmarks: false,
	})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for a warm pod of pool %s/%s: %w", p.Namespace, p.Name, ctx.Err())
		}
		if wctx.Err() != nil {
			return nil
		}
		// An expired resourceVersion or a refused watch: a new list is the
		// answer, after a short pause so a broken watch does not spin.
		return sleepCtx(wctx, ctx, 100*time.Millisecond)
	}
	defer w.Stop()
	for {
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("waiting for a warm pod of pool %s/%s: %w", p.Namespace, p.Name, ctx.Err())
			}
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil
			}
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			if pod, ok := ev.Object.(*corev1.Pod); ok && pool.Claimable(p, pod) && !st.dead[pod.UID] {
				return nil
			}
		}
	}
}

func sleepCtx(wctx, ctx context.Context, d time.Duration) error {
	select {
	case <-wctx.Done():
	case <-time.After(d):
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// claimCold creates a pod from the pool's template, claimed from the
// start, waits for its runner and hands it over. A pod that does not get
// there is deleted.
func (c *Claimer) claimCold(ctx context.Context, p *v1alpha1.SandboxPool, opts Options) (*Sandbox, error) {
	t0 := time.Now()
	cold := pool.ColdPod(p, opts.Claimant, time.Now())
	poolToken, err := c.poolToken(ctx, cold)
	if err != nil {
		return nil, err
	}
	created, err := c.kube.CoreV1().Pods(p.Namespace).Create(ctx, cold, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating a cold pod of pool %s/%s: %w", p.Namespace, p.Name, err)
	}
	c.cfg.Logger.Info("no warm pod claimable, created a cold pod", "namespace", created.Namespace, "pod", created.Name, "pool", p.Name)
	fail := func(err error) (*Sandbox, error) {
		// Delete with a context of its own: ctx may be what ended.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return nil, errors.Join(err, c.deletePod(dctx, created))
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.ColdTimeout)
	defer cancel()
	ready, err := c.waitReady(cctx, created)
	if err != nil {
		return fail(err)
	}
	rc, addr, err := c.runnerFor(ready, opts.Transport, "")
	if err != nil {
		return fail(err)
	}
	for {
		pctx, pcancel := context.WithTimeout(cctx, c.cfg.ProbeTimeout)
		err := rc.Healthz(pctx)
		pcancel()
		if err == nil {
			break
		}
		select {
		case <-cctx.Done():
			return fail(fmt.Errorf("waiting for the runner of cold pod %s/%s: %w (last: %w)", ready.Namespace, ready.Name, cctx.Err(), err))
		case <-time.After(50 * time.Millisecond):
		}
	}
	adopt := time.Since(t0)
	t1 := time.Now()
	sb, err := c.hand(ctx, ready, rc, addr, poolToken, v1alpha1.OriginCold, opts)
	if err != nil {
		return fail(err)
	}
	sb.Timings.Adopt, sb.Timings.Hand = adopt, time.Since(t1)
	return sb, nil
}

// waitReady watches pod until it is Ready with an IP.
func (c *Claimer) waitReady(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	sel := fields.OneTermEqualSelector("metadata.name", pod.Name).String()
	rv := pod.ResourceVersion
	for {
		w, err := c.kube.CoreV1().Pods(pod.Namespace).Watch(ctx, metav1.ListOptions{FieldSelector: sel, ResourceVersion: rv})
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("waiting for cold pod %s/%s to be Ready: %w", pod.Namespace, pod.Name, ctx.Err())
			}
			got, gerr := c.kube.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
			if gerr != nil {
				return nil, fmt.Errorf("waiting for cold pod %s/%s to be Ready: %w", pod.Namespace, pod.Name, gerr)
			}
			if pool.IsReady(got) && got.Status.PodIP != "" {
				return got, nil
			}
			rv = got.ResourceVersion
			continue
		}
		last, done, err := readyFrom(ctx, w, pod)
		w.Stop()
		if done || err != nil {
			return last, err
		}
		if last != nil {
			rv = last.ResourceVersion
		}
	}
}

func readyFrom(ctx context.Context, w watch.Interface, pod *corev1.Pod) (*corev1.Pod, bool, error) {
	var last *corev1.Pod
	for {
		select {
		case <-ctx.Done():
			msg := ""
			if last != nil {
				msg = " (" + podSummary(last) + ")"
			}
			return nil, true, fmt.Errorf("waiting for cold pod %s/%s to be Ready%s: %w", pod.Namespace, pod.Name, msg, ctx.Err())
		case ev, ok := <-w.ResultChan():
			if !ok {
				return last, false, nil
			}
			switch ev.Type {
			case watch.Deleted:
				return nil, true, fmt.Errorf("waiting for cold pod %s/%s to be Ready: it was deleted", pod.Namespace, pod.Name)
			case watch.Added, watch.Modified:
				got, ok := ev.Object.(*corev1.Pod)
				if !ok {
					continue
				}
				last = got
				if pool.IsReady(got) && got.Status.PodIP != "" {
					return got, true, nil
				}
				if got.Status.Phase == corev1.PodFailed || got.Status.Phase == corev1.PodSucceeded {
					return nil, true, fmt.Errorf("cold pod %s/%s ended before it was Ready (%s)", pod.Namespace, pod.Name, podSummary(got))
				}
			}
		}
	}
}

func podSummary(p *corev1.Pod) string {
	s := "phase " + string(p.Status.Phase)
	if p.Spec.NodeName == "" {
		s += ", not scheduled"
	}
	for _, cs := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			s += fmt.Sprintf(", %s waiting: %s", cs.Name, w.Reason)
		}
	}
	return s
}

// hand gives the claimed pod to its claimant: the fresh token goes into a
// Secret owned by the pod, then to the runner with the claimant's env,
// authorized by the pool token.
func (c *Claimer) hand(ctx context.Context, pod *corev1.Pod, rc *runnerclient.Client, addr, poolToken, origin string, opts Options) (*Sandbox, error) {
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	if err := c.storeToken(ctx, pod, token); err != nil {
		return nil, err
	}
	rc.Token = poolToken
	// The runner answers /claim at once; a hung one must not hold the
	// claim until the caller gives up.
	hctx, cancel := context.WithTimeout(ctx, handTimeout)
	defer cancel()
	if _, err := rc.Claim(hctx, api.ClaimRequest{Claimant: opts.Claimant, Token: token, Env: opts.Env}); err != nil {
		return nil, fmt.Errorf("handing pod %s/%s to its claimant: %w", pod.Namespace, pod.Name, err)
	}
	rc.Token = token
	return &Sandbox{
		Pod:       pod.Name,
		Namespace: pod.Namespace,
		Node:      pod.Spec.NodeName,
		Pool:      pod.Labels[v1alpha1.LabelPool],
		PodIP:     pod.Status.PodIP,
		Address:   addr,
		Token:     token,
		Origin:    origin,
		Claimant:  opts.Claimant,
		Transport: opts.Transport,
		runner:    rc,
	}, nil
}

// giveFiles writes the claim's files into the sandbox; on a failure it
// releases the sandbox, which nobody else can use now that it is claimed.
func (c *Claimer) giveFiles(ctx context.Context, sb *Sandbox, files []File) error {
	t0 := time.Now()
	for _, f := range files {
		if err := sb.CopyTo(ctx, bytes.NewReader(f.Data), f.Path, f.Mode); err != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			return errors.Join(fmt.Errorf("giving the claim's files: %w", err), c.Release(rctx, sb.Namespace, sb.Pod))
		}
	}
	sb.Timings.Hand += time.Since(t0)
	return nil
}

// TokenSecretName is the Secret holding the pool token of pod: its
// sandbox.io/token-secret annotation, else def.
func TokenSecretName(pod *corev1.Pod, def string) string {
	if n := pod.Annotations[v1alpha1.AnnotationTokenSecret]; n != "" {
		return n
	}
	return def
}

func (c *Claimer) poolToken(ctx context.Context, pod *corev1.Pod) (string, error) {
	name := TokenSecretName(pod, c.cfg.TokenSecret)
	s, err := c.kube.CoreV1().Secrets(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading the pool token of pod %s/%s from Secret %s: %w", pod.Namespace, pod.Name, name, err)
	}
	tok := strings.TrimSpace(string(s.Data[v1alpha1.TokenSecretKey]))
	if tok == "" {
		return "", fmt.Errorf("reading the pool token of pod %s/%s: Secret %s has no %q key", pod.Namespace, pod.Name, name, v1alpha1.TokenSecretKey)
	}
	return tok, nil
}

// ClaimSecretName is the Secret, owned by the claimed pod, that holds the
// claimant's token under v1alpha1.TokenSecretKey.
func ClaimSecretName(pod string) string { return pod + "-claim" }

func (c *Claimer) storeToken(ctx context.Context, pod *corev1.Pod, token string) error {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      ClaimSecretName(pod.Name),
			Namespace: pod.Namespace,
			Labels:    map[string]string{v1alpha1.LabelPool: pod.Labels[v1alpha1.LabelPool]},
			// Deleting the pod (releasing the sandbox) deletes its token.
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{v1alpha1.TokenSecretKey: []byte(token)},
	}
	if _, err := c.kube.CoreV1().Secrets(pod.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("storing the claimant token of pod %s/%s in Secret %s: %w", pod.Namespace, pod.Name, s.Name, err)
	}
	return nil
}

func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := crand.Read(b); err != nil {
		return "", fmt.Errorf("generating a claimant token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func (c *Claimer) deletePod(ctx context.Context, pod *corev1.Pod) error {
	err := c.kube.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}
