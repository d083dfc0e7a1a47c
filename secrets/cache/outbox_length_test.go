package cache

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/amtedge/amtedge/secrets"
)

func TestOutboxLengthWithoutTheKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "amtedge.db")
	s, err := Open(path, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"a", "b", "c"} {
		if err := s.PutDevice(context.Background(), u, secrets.Credentials{AMTPassword: "x", State: secrets.Pending}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if n, err := OutboxLength(path); err != nil || n != 3 {
		t.Fatalf("OutboxLength = %d, %v; want 3", n, err)
	}
}
