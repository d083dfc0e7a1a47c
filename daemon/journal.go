package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/amtedge/amtedge/appliance/events"
)

// journalFields maps the slog attribute keys the box uses to journald field names. Keys not listed become their
// upper-case form with every character outside A–Z, 0–9 turned into '_' (groups are joined with '_'). The README
// documents the table; central operators filter on these names, so they do not change.
var journalFields = map[string]string{
	"device":        "DEVICE_UUID",
	"profile":       "PROFILE",
	"domain":        "DOMAIN",
	"failed_step":   "STEP",
	"step":          "STEP",
	"duration_ms":   "DURATION_MS",
	"mode_before":   "MODE_BEFORE",
	"mode_after":    "MODE_AFTER",
	"exchanges":     "EXCHANGES",
	"status":        "STATUS",
	"verb":          "VERB",
	"task":          "TASK",
	"event":         "EVENT",
	"client":        "SESSION_ID",
	"remote":        "REMOTE_ADDR",
	"err":           "ERROR",
	"send_err":      "SEND_ERROR",
	"agent_version": "AGENT_VERSION",
}

// reservedFields are set by the handler itself; an attribute with such a name is kept under ATTR_<name>.
var reservedFields = map[string]bool{"MESSAGE": true, "MESSAGE_ID": true, "PRIORITY": true, "SYSLOG_IDENTIFIER": true,
	"CODE_FILE": true, "CODE_LINE": true, "CODE_FUNC": true, "SYSLOG_FACILITY": true, "SYSLOG_PID": true}

// journalFieldName turns an attribute key (with its group prefix) into a valid journald field name: upper-case
// letters, digits and '_', not starting with '_' or a digit, at most 64 characters.
func journalFieldName(key string) string {
	if f, ok := journalFields[key]; ok {
		return f
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(key) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	if name == "" || name[0] == '_' || name[0] >= '0' && name[0] <= '9' || reservedFields[name] {
		name = "ATTR_" + strings.TrimLeft(name, "_")
	}
	if len(name) > 64 {
		name = name[:64]
	}
	return name
}

// journalPriority maps slog levels to syslog priorities.
func journalPriority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= slog.LevelInfo:
		return journal.PriInfo
	default:
		return journal.PriDebug
	}
}

// journalHandler writes slog records with journald's native protocol: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER,
// MESSAGE_ID (from the `event` attribute, through the events catalog) and one field per attribute. A record the
// journal refuses goes to the fallback handler (text on stderr), so nothing is lost silently.
type journalHandler struct {
	level    slog.Leveler
	prefix   string // group prefix of attributes added later, "" or "GROUP_"
	fields   []journalField
	send     func(msg string, pri journal.Priority, vars map[string]string) error
	fallback slog.Handler
}

type journalField struct{ name, value string }

func newJournalHandler(level slog.Leveler, fallback slog.Handler) *journalHandler {
	return &journalHandler{level: level, send: journal.Send, fallback: fallback}
}

func (h *journalHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	vars := make(map[string]string, len(h.fields)+r.NumAttrs()+2)
	for _, f := range h.fields {
		vars[f.name] = f.value
	}
	r.Attrs(func(a slog.Attr) bool {
		appendJournalAttr(vars, h.prefix, a)
		return true
	})
	vars["SYSLOG_IDENTIFIER"] = "amtedge"
	if name, ok := vars["EVENT"]; ok {
		if e, ok := events.Lookup(name); ok {
			vars["MESSAGE_ID"] = e.ID
		}
	}
	if err := h.send(r.Message, journalPriority(r.Level), vars); err != nil {
		r.AddAttrs(slog.String("journal_err", err.Error()))
		return h.fallback.Handle(ctx, r)
	}
	return nil
}

// appendJournalAttr flattens an attribute (and groups) into fields.
func appendJournalAttr(vars map[string]string, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p = prefix + a.Key + "_"
		}
		for _, ga := range a.Value.Group() {
			appendJournalAttr(vars, p, ga)
		}
		return
	}
	vars[journalFieldName(prefix+a.Key)] = a.Value.String()
}

func (h *journalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	vars := map[string]string{}
	for _, a := range attrs {
		appendJournalAttr(vars, h.prefix, a)
	}
	h2 := *h
	h2.fields = append([]journalField(nil), h.fields...)
	for name, v := range vars {
		h2.fields = append(h2.fields, journalField{name, v})
	}
	h2.fallback = h.fallback.WithAttrs(attrs)
	return &h2
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.prefix = h.prefix + name + "_"
	h2.fallback = h.fallback.WithGroup(name)
	return &h2
}

// useJournal decides log.output "auto": the journal when stderr is journald's stream (JOURNAL_STREAM), or when the
// journal socket is there and stderr is not a terminal (a unit with StandardError=null, or a container with the
// socket mounted); a technician running the box in a terminal keeps reading text.
func useJournal(output string, stderr io.Writer) (bool, error) {
	switch output {
	case "stderr":
		return false, nil
	case "journal":
		if !journal.Enabled() {
			return false, fmt.Errorf("log.output: journal: the journald socket /run/systemd/journal/socket is not reachable")
		}
		return true, nil
	}
	f, isFile := stderr.(*os.File)
	if !isFile || f.Fd() != 2 {
		return false, nil // a captured writer (tests, embedding): keep it
	}
	if ok, _ := journal.StderrIsJournalStream(); ok {
		return true, nil
	}
	if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		return false, nil
	}
	return journal.Enabled(), nil
}

// newLogger builds the box's logger per log.*; level is the reloadable level (SIGHUP changes log.level).
func newLogger(c LogConfig, w io.Writer, level *slog.LevelVar) (*slog.Logger, error) {
	if level == nil {
		level = new(slog.LevelVar)
	}
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.Level))
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	var text slog.Handler = slog.NewTextHandler(w, opts)
	if c.Format == "json" {
		text = slog.NewJSONHandler(w, opts)
	}
	journalOut, err := useJournal(c.Output, w)
	if err != nil {
		return nil, err
	}
	if journalOut {
		return slog.New(newJournalHandler(level, text)), nil
	}
	return slog.New(text), nil
}
