package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ProtocolError is the refusal of a POST /claim whose protocol is not the
// runner's ClaimProtocol. Its message says which side is older and what to
// do; the runner answers it with 400 and Error.ClaimProtocol set.
type ProtocolError struct {
	// Got is the request's protocol; 0 when the request has no protocol
	// field (claim protocol 1, which carried the token itself).
	Got int
	// Want is the protocol the runner speaks.
	Want int
}

func (e *ProtocolError) Error() string {
	got := fmt.Sprintf("claim protocol %d", e.Got)
	if e.Got == 0 {
		got = "claim protocol 1 (a request without a protocol field)"
	}
	if e.Got < e.Want {
		return fmt.Sprintf("%s is not supported: this runner speaks claim protocol %d, so the claim controller (sandbox-webhook) is older than the runner: "+
			"finish the chart upgrade (helm upgrade) so that the controller speaks %d too", got, e.Want, e.Want)
	}
	return fmt.Sprintf("%s is not supported: this runner speaks claim protocol %d, so it is older than the claim controller: "+
		"the node agents replace warm pods with the chart's current runner; retry the claim once they have", got, e.Want)
}

// peekProtocol reads the protocol of a claim body that did not decode
// strictly (it may be of another protocol, with other fields); ok is false
// when the body is not a JSON object at all.
func peekProtocol(body []byte) (protocol int, ok bool) {
	var p struct {
		Protocol int `json:"protocol"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return 0, false
	}
	return p.Protocol, true
}

// decodeClaimBody reads r and decodes it strictly into req; a body that
// does not decode but is a claim of another protocol is refused with a
// ProtocolError instead of its decoding error (another protocol's fields
// are unknown here), so that both sides learn what to upgrade.
func decodeClaimBody(r io.Reader, req *ClaimRequest) error {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		return fmt.Errorf("reading body: %w", err)
	}
	err := DecodeStrict(bytes.NewReader(buf.Bytes()), req)
	if err == nil {
		return nil
	}
	if got, ok := peekProtocol(buf.Bytes()); ok && got != ClaimProtocol {
		return fmt.Errorf("%w (the body: %w)", &ProtocolError{Got: got, Want: ClaimProtocol}, err)
	}
	return err
}

// ClaimProtocolOf is the protocol a runner's refusal of POST /claim names
// (Error.ClaimProtocol), or 0 when it names none (a runner of a release
// before the field, or a refusal for another reason).
func ClaimProtocolOf(body []byte) int {
	var e Error
	if err := json.Unmarshal(body, &e); err != nil {
		return 0
	}
	return e.ClaimProtocol
}

// IsProtocolError reports whether err is, or wraps, a ProtocolError.
func IsProtocolError(err error) bool {
	var pe *ProtocolError
	return errors.As(err, &pe)
}
