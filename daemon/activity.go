package main

import (
	"context"
	"log/slog"
	"strings"

	"github.com/amtedge/amtedge/appliance/events"
)

// The activity feed: every log record that carries an `event` attribute (the operator-facing events of
// appliance/events) is also handed to the box's events.Hub, which the web UI's activity page and dashboard read
// and stream. The feed is a tee in front of the box's logger, so it sees exactly what the journal gets — which
// holds no secret, by the logging rules — and needs no second call at any emitting site.

// activitySize is how many recent events the hub keeps for the activity page.
const activitySize = 1000

// activityHandler tees event records to a hub and passes every record on to the next handler.
type activityHandler struct {
	next  slog.Handler
	hub   *events.Hub
	attrs []events.Field // from WithAttrs, group-qualified
	event string         // an `event` attribute given through WithAttrs
	group string         // the open group prefix ("a.b."), from WithGroup
}

func newActivityHandler(next slog.Handler, hub *events.Hub) slog.Handler {
	return &activityHandler{next: next, hub: hub}
}

func (h *activityHandler) Enabled(ctx context.Context, l slog.Level) bool {
	// Events are published even when the journal's level would drop them: they are all Info or above anyway,
	// and the activity page must not depend on the log level.
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *activityHandler) Handle(ctx context.Context, r slog.Record) error {
	name := h.event
	if h.group == "" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "event" {
				name = a.Value.String()
			}
			return true
		})
	}
	if name != "" { // only events are published: the fields are built for them alone
		fields := append([]events.Field(nil), h.attrs...)
		r.Attrs(func(a slog.Attr) bool {
			if a.Key != "event" || h.group != "" {
				fields = appendField(fields, h.group, a)
			}
			return true
		})
		h.hub.Publish(events.Record{Time: r.Time, Name: name, Level: r.Level.String(), Message: r.Message, Fields: fields})
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// appendField flattens a (possibly group) attribute into dotted keys.
func appendField(out []events.Field, prefix string, a slog.Attr) []events.Field {
	a.Value = a.Value.Resolve()
	if a.Value.Kind() == slog.KindGroup {
		for _, g := range a.Value.Group() {
			out = appendField(out, prefix+a.Key+".", g)
		}
		return out
	}
	// An empty value (domain="" of a CCM activation) tells the activity page nothing.
	if a.Key == "" || a.Value.String() == "" {
		return out
	}
	return append(out, events.Field{Key: prefix + a.Key, Value: a.Value.String()})
}

func (h *activityHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	c.attrs = append([]events.Field(nil), h.attrs...)
	for _, a := range attrs {
		if a.Key == "event" && h.group == "" {
			c.event = a.Value.String()
			continue
		}
		c.attrs = appendField(c.attrs, h.group, a)
	}
	return &c
}

func (h *activityHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.group = strings.Join([]string{h.group, name, "."}, "")
	return &c
}
