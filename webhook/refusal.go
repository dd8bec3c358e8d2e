package webhook

import (
	"errors"
	"fmt"
)

// ErrRefused is wrapped by every error that means "this pod must not be
// admitted as it is": a malformed sandbox.io value, a name collision, a pod
// that cannot safely be injected. The handler turns it into a denied
// admission; any other error is a bug and answers 500.
var ErrRefused = errors.New("refused")

// Refusal is a policy refusal about one key or field of the pod.
type Refusal struct {
	// Field is the annotation key, label key or pod field at fault.
	Field string
	// Reason says what is wrong and what is allowed.
	Reason string
}

func (r *Refusal) Error() string {
	if r.Field == "" {
		return r.Reason
	}
	return fmt.Sprintf("%s: %s", r.Field, r.Reason)
}

// Unwrap makes errors.Is(err, ErrRefused) true for every Refusal.
func (r *Refusal) Unwrap() error { return ErrRefused }

func refuse(field, format string, args ...any) error {
	return &Refusal{Field: field, Reason: fmt.Sprintf(format, args...)}
}
