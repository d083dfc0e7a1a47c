package inventory

import (
	"fmt"
	"testing"
	"time"
)

func TestInventoryKeepsNewestPerDevice(t *testing.T) {
	inv := New(3)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		inv.Add(Record{ID: fmt.Sprint(i), UUID: "a", Ended: base.Add(time.Duration(i) * time.Minute),
			Steps: []Step{{Name: "s", Result: StepOK}}})
	}
	inv.Add(Record{ID: "b0", UUID: "b", Ended: base.Add(time.Hour)})
	got := inv.Device("a")
	if len(got) != 3 || got[0].ID != "4" || got[2].ID != "2" {
		t.Fatalf("Device(a) = %+v, want ids 4,3,2", got)
	}
	got[0].Steps[0].Name = "changed"
	if inv.Device("a")[0].Steps[0].Name != "s" {
		t.Fatal("Device returned steps aliasing the inventory's own")
	}
	latest := inv.Latest()
	if len(latest) != 2 || latest[0].UUID != "b" || latest[1].ID != "4" {
		t.Fatalf("Latest = %+v", latest)
	}
	if len(inv.Device("none")) != 0 {
		t.Fatal("unknown device has records")
	}
}

func TestInventoryBoundsDevices(t *testing.T) {
	inv := NewBounded(1, 3)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		inv.Add(Record{UUID: fmt.Sprint("dev", i), Ended: base.Add(time.Duration(i) * time.Minute)})
	}
	latest := inv.Latest()
	if len(latest) != 3 || latest[0].UUID != "dev4" || latest[2].UUID != "dev2" {
		t.Fatalf("Latest = %+v, want dev4, dev3, dev2", latest)
	}
}
