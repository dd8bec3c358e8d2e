package webhook_test

import (
	"fmt"

	"sandbox.io/injector/webhook"
)

// Mutate turns an opted-in pod into JSON patch operations against the pod
// as it was sent; nothing else of the pod is re-encoded.
func ExampleMutate() {
	cfg, err := webhook.Config{RunnerImage: "registry.test/sandbox-runner:v1", RunnerVersion: "v1"}.Complete()
	if err != nil {
		panic(err)
	}
	pod, err := webhook.DecodePod([]byte(`{"metadata":{"name":"app","annotations":{"sandbox.io/inject":"true"}},
		"spec":{"containers":[{"name":"app","image":"app:v1","command":["/app","--serve"]}]}}`))
	if err != nil {
		panic(err)
	}
	res, err := webhook.Mutate(pod, &cfg, nil)
	if err != nil {
		panic(err)
	}
	for _, op := range res.Patch {
		fmt.Println(op.Operation, op.Path)
	}
	fmt.Println(res.Status.Containers, res.Status.Method)
	// Output:
	// add /spec/volumes
	// add /spec/initContainers
	// add /spec/containers/0/command
	// add /spec/containers/0/volumeMounts
	// add /spec/containers/0/ports
	// add /spec/containers/0/readinessProbe
	// add /metadata/annotations/sandbox.io~1status
	// [app] copy
}

// Decide applies the opt-in rules; a malformed value is a refusal that
// names the key and the allowed values.
func ExampleDecide() {
	cfg, _ := webhook.Config{RunnerImage: "registry.test/sandbox-runner:v1"}.Complete()
	pod, _ := webhook.DecodePod([]byte(`{"metadata":{"annotations":{"sandbox.io/inject":"yes"}},"spec":{"containers":[{"name":"a"}]}}`))
	_, err := webhook.Decide(pod, "team-a", nil, &cfg)
	fmt.Println(err)

	pod, _ = webhook.DecodePod([]byte(`{"spec":{"containers":[{"name":"a"}]}}`))
	d, _ := webhook.Decide(pod, "team-a", map[string]string{"sandbox.io/inject": "enabled"}, &cfg)
	fmt.Println(d.Inject, d.Reason)
	// Output:
	// annotation sandbox.io/inject: value "yes" is not allowed; use "true" or "false"
	// true namespace label
}
