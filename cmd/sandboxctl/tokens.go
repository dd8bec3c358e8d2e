package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tokenStore keeps each claim's token in a 0600 file of its own under dir
// (namespace/claim), so that exec, cp and release of a later sandboxctl run
// can reach the sandbox: the API holds only the token's digest.
type tokenStore struct{ dir string }

// defaultTokenDir is $SANDBOXCTL_TOKEN_DIR, else the user's config
// directory's sandboxctl/tokens.
func defaultTokenDir() string {
	if d := os.Getenv("SANDBOXCTL_TOKEN_DIR"); d != "" {
		return d
	}
	base, err := os.UserConfigDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "sandboxctl", "tokens")
}

func (s tokenStore) path(namespace, claim string) (string, error) {
	for _, part := range []string{namespace, claim} {
		if part == "" || strings.ContainsAny(part, `/\`) || part == "." || part == ".." {
			return "", fmt.Errorf("%q is not a namespace or claim name", part)
		}
	}
	return filepath.Join(s.dir, namespace, claim), nil
}

func (s tokenStore) save(namespace, claim, token string) error {
	p, err := s.path(namespace, claim)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("storing the claim's token: %w", err)
	}
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("storing the claim's token: %w", err)
	}
	return nil
}

func (s tokenStore) load(namespace, claim string) (string, error) {
	p, err := s.path(namespace, claim)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no token for claim %s/%s in %s: only the sandboxctl that claimed it holds its token (or pass --token)", namespace, claim, s.dir)
	}
	if err != nil {
		return "", fmt.Errorf("reading the claim's token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (s tokenStore) remove(namespace, claim string) {
	if p, err := s.path(namespace, claim); err == nil {
		_ = os.Remove(p)
	}
}
