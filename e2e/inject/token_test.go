package inject

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sandbox.io/injector/api/v1alpha1"
	runnerapi "sandbox.io/injector/runner/api"
	"sandbox.io/injector/webhook"
)

// TestAttackSharedTokenSecret: every injected pod that names a runner token
// Secret mounts it, and its own code reads the mounted file as easily as
// its runner does. With the token itself in the Secret, code in one sandbox
// reads it and drives a neighbour's runner (the control: the attack works);
// with only the token's verifier (sha256:<hex>) there, what it reads opens
// no runner, while the token itself still opens both.
func TestAttackSharedTokenSecret(t *testing.T) {
	x := requireE2E(t)
	ns := x.namespace(t, "shared-token", nil) // its Secret holds testToken itself
	sum := sha256.Sum256([]byte(testToken))
	verifier := "sha256:" + hex.EncodeToString(sum[:])
	const verifierSecret = "runner-token-verifier"
	if _, err := x.kube.CoreV1().Secrets(ns).Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: verifierSecret},
		StringData: map[string]string{v1alpha1.TokenSecretKey: verifier},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := func(name, secret string) *corev1.Pod {
		t.Helper()
		pod := busyboxPod(x, ns, name, map[string]string{v1alpha1.AnnotationInject: "true", v1alpha1.AnnotationTokenSecret: secret})
		if _, err := x.kube.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return pod
	}
	for _, p := range [][2]string{{"raw-attacker", tokenSecret}, {"raw-victim", tokenSecret}, {"attacker", verifierSecret}, {"victim", verifierSecret}} {
		start(p[0], p[1])
	}
	pods := map[string]*corev1.Pod{}
	for _, name := range []string{"raw-attacker", "raw-victim", "attacker", "victim"} {
		pods[name] = x.waitReady(t, ns, name, 2*time.Minute)
	}
	// run runs shell code in pod through its runner, with the test's token.
	run := func(pod *corev1.Pod, script string) string {
		t.Helper()
		res, err := runnerClient(pod, testToken).Execute(t.Context(), runnerapi.ExecuteRequest{Shell: script})
		if err != nil {
			t.Fatalf("running %q in %s with the token itself: %v", script, pod.Name, err)
		}
		return res.Stdout
	}
	// tryToken is what code in from does with cred: POST /execute on to's
	// runner, appending mark to to's /tmp/planted, and it returns the
	// answer's status line and body (HTTP/1.0 through busybox nc, so the
	// answer is a real one; nc's input stays open until the answer is in,
	// since a runner cancels the command of a client that hung up).
	tryToken := func(from, to *corev1.Pod, cred, mark string) (line, body string) {
		t.Helper()
		req := fmt.Sprintf(`{"argv":["sh","-c","echo %s >> /tmp/planted"]}`, mark)
		req = fmt.Sprintf("POST %s HTTP/1.0\r\nHost: runner\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			runnerapi.PathExecute, cred, len(req), req)
		answer := run(from, fmt.Sprintf("(printf '%%s' %s; sleep 3) | nc -w 5 %s %d", shellQuote(req), to.Status.PodIP, runnerapi.DefaultPort))
		line, rest, _ := strings.Cut(answer, "\n")
		_, body, _ = strings.Cut(rest, "\r\n\r\n")
		t.Logf("from %s to %s with %q: %s %s", from.Name, to.Name, cred, strings.TrimSpace(line), body)
		return strings.TrimSpace(line), body
	}
	readTokenFile := func(pod *corev1.Pod) string {
		t.Helper()
		return strings.TrimSpace(run(pod, "cat "+webhook.TokenMountPath+"/"+v1alpha1.TokenSecretKey))
	}
	// ran: the command ran to its end (exit code 0).
	ran := func(line, body string) bool {
		return strings.Contains(line, " 200 ") && strings.Contains(body, `"exit_code":0,`)
	}
	refused := func(line string) bool { return strings.Contains(line, " 401 ") }

	// The control: a Secret holding the token gives it to every sandbox.
	read := readTokenFile(pods["raw-attacker"])
	if read != testToken {
		t.Fatalf("the raw attacker read %q from its token file, want the token itself", read)
	}
	if line, body := tryToken(pods["raw-attacker"], pods["raw-victim"], read, "raw"); !ran(line, body) {
		t.Fatalf("the token read from a raw Secret did not run a command in the neighbour's sandbox (%q %s): the checks below would prove nothing", line, body)
	}
	if out := run(pods["raw-victim"], "cat /tmp/planted"); out != "raw\n" {
		t.Fatalf("the raw victim's /tmp/planted holds %q, want the attacker's line: the checks below would prove nothing", out)
	}

	// A Secret holding only the verifier: what the attacker reads opens
	// nothing, the token itself still opens both runners.
	read = readTokenFile(pods["attacker"])
	if read != verifier {
		t.Fatalf("the attacker read %q from its token file, want the verifier %q", read, verifier)
	}
	for i, cred := range []string{read, strings.TrimPrefix(read, "sha256:")} {
		if line, _ := tryToken(pods["attacker"], pods["victim"], cred, fmt.Sprintf("read-%d", i)); !refused(line) {
			t.Errorf("what the attacker read (%q) was not refused by the victim's runner: %q", cred, line)
		}
	}
	if line, body := tryToken(pods["attacker"], pods["victim"], testToken, "token"); !ran(line, body) {
		t.Errorf("the token itself did not run a command through a runner whose Secret holds its verifier: %q %s", line, body)
	}
	if out := run(pods["victim"], "cat /tmp/planted"); out != "token\n" {
		t.Errorf("the victim's /tmp/planted holds %q, want only the line of the request with the token itself", out)
	}
}
