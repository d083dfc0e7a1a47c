package storetest

import (
	"testing"

	"github.com/amtedge/amtedge/secrets"
)

func TestMemory(t *testing.T) {
	Run(t, func(t *testing.T) (secrets.Store, func() secrets.Store) {
		m := NewMemory()
		t.Cleanup(func() { m.Close() })
		return m, nil
	})
}

func TestMemoryHistoryLimit(t *testing.T) {
	m := NewMemory()
	for i := range MemoryHistoryLimit + 3 {
		if err := m.PutDevice(t.Context(), "d", secrets.Credentials{AMTPassword: string(rune('a' + i)), State: secrets.Pending}); err != nil {
			t.Fatal(err)
		}
	}
	d, err := m.Device(t.Context(), "d")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.History) != MemoryHistoryLimit {
		t.Errorf("len(History) = %d, want MemoryHistoryLimit (%d)", len(d.History), MemoryHistoryLimit)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Device(t.Context(), "d"); err == nil {
		t.Error("Device after Close: err = nil, want an error")
	}
}
