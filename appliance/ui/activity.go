package ui

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/amtedge/amtedge/appliance/events"
)

const activityShown = 500

// activityFilter is the /activity query; the live stream takes the same one.
type activityFilter struct {
	Event string
	Level string // "", DEBUG, INFO, WARN, ERROR
	Q     string
	Since uint64 // the stream: the last record the page already shows
}

var levels = []string{"DEBUG", "INFO", "WARN", "ERROR"}

func parseActivityFilter(r *http.Request) (activityFilter, string) {
	q := r.URL.Query()
	f := activityFilter{Event: q.Get("event"), Level: strings.ToUpper(q.Get("level")), Q: strings.TrimSpace(q.Get("q"))}
	var problems []string
	if s := q.Get("since"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			problems = append(problems, "since must be a record number")
		}
		f.Since = n
	}
	if f.Event != "" {
		if _, ok := events.Lookup(f.Event); !ok {
			problems = append(problems, "there is no event named "+strconv.Quote(f.Event))
			f.Event = ""
		}
	}
	if f.Level != "" && !slices.Contains(levels, f.Level) {
		problems = append(problems, "level must be one of "+strings.Join(levels, ", "))
		f.Level = ""
	}
	return f, strings.Join(problems, "; ")
}

func (f activityFilter) match(r events.Record) bool {
	if f.Event != "" && r.Name != f.Event {
		return false
	}
	if f.Level != "" && r.Level != f.Level {
		return false
	}
	if f.Q == "" {
		return true
	}
	q := strings.ToLower(f.Q)
	if strings.Contains(strings.ToLower(r.Message), q) || strings.Contains(strings.ToLower(r.Name), q) {
		return true
	}
	for _, fl := range r.Fields {
		if strings.Contains(strings.ToLower(fl.Value), q) || strings.Contains(strings.ToLower(fl.Key), q) {
			return true
		}
	}
	return false
}

// StreamQuery is the filter as the live stream's query, with since set to the last record the page shows, so
// that nothing published between rendering the page and connecting the stream is lost.
func (f activityFilter) StreamQuery() string {
	v := url.Values{}
	for k, val := range map[string]string{"event": f.Event, "level": f.Level, "q": f.Q} {
		if val != "" {
			v.Set(k, val)
		}
	}
	v.Set("since", strconv.FormatUint(f.Since, 10))
	return "?" + v.Encode()
}

type activityView struct {
	Filter  activityFilter
	Problem string
	Events  []string
	Levels  []string
	List    []events.Record // newest first
	More    int             // matching records not shown
}

func (h *handler) activity(w http.ResponseWriter, r *http.Request) {
	f, problem := parseActivityFilter(r)
	v := activityView{Filter: f, Problem: problem, Levels: levels}
	for _, e := range events.All() {
		v.Events = append(v.Events, e.Name)
	}
	slices.Sort(v.Events)
	recent := h.cfg.Activity.Recent(0)
	if len(recent) > 0 {
		v.Filter.Since = recent[len(recent)-1].Seq
	}
	for i := len(recent) - 1; i >= 0; i-- {
		if !f.match(recent[i]) {
			continue
		}
		if len(v.List) == activityShown {
			v.More++
			continue
		}
		v.List = append(v.List, recent[i])
	}
	code := http.StatusOK
	if problem != "" {
		code = http.StatusBadRequest
	}
	h.render(w, r, code, "activity", h.newView(r, "Activity", "activity", v))
}

// keepAlive is how often an idle stream sends a comment, so proxies and the browser keep it open.
const keepAlive = 15 * time.Second

// activityStream sends each new record matching the filter as an SSE event "activity" whose data is the table
// row, rendered by the same template as the page. A reconnecting browser sends Last-Event-ID and gets what it
// missed that the hub still keeps.
func (h *handler) activityStream(w http.ResponseWriter, r *http.Request) {
	f, problem := parseActivityFilter(r)
	if problem != "" {
		http.Error(w, problem, http.StatusBadRequest)
		return
	}
	rc := http.NewResponseController(w)
	// A stream lives longer than any write timeout the admin listener sets for pages; lift it for this response
	// (servers that cannot are fine: the browser reconnects with Last-Event-ID and misses nothing the hub keeps).
	_ = rc.SetWriteDeadline(time.Time{})
	sub := h.cfg.Activity.Subscribe()
	defer h.cfg.Activity.Unsubscribe(sub)

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return // the connection cannot stream
	}
	// Replay what the hub still keeps after the last record the browser has: Last-Event-ID on a reconnect, else
	// the page's since.
	var last uint64
	from, replay := f.Since, r.URL.Query().Has("since")
	if id, err := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64); err == nil {
		from, replay = id, true
	}
	if replay {
		for _, rec := range h.cfg.Activity.Recent(from) {
			if f.match(rec) {
				if err := h.sendRecord(w, rec); err != nil {
					return
				}
			}
			last = rec.Seq
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	var dropped uint64
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case rec, ok := <-sub.C:
			if !ok {
				return
			}
			if rec.Seq <= last || !f.match(rec) {
				continue
			}
			if d := sub.Dropped(); d != dropped {
				if err := h.sendSSE(w, "", "gap", d-dropped); err != nil {
					return
				}
				dropped = d
			}
			if err := h.sendRecord(w, rec); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func (h *handler) sendRecord(w http.ResponseWriter, rec events.Record) error {
	return h.sendSSE(w, strconv.FormatUint(rec.Seq, 10), "activityrow", rec)
}

// sendSSE writes one "activity" event whose data is a rendered fragment. SSE data cannot hold a newline, so
// each line of the fragment is its own data line (the browser joins them with newlines again).
func (h *handler) sendSSE(w http.ResponseWriter, id, tmpl string, data any) error {
	var buf bytes.Buffer
	if err := h.pages.fragments.ExecuteTemplate(&buf, tmpl, data); err != nil {
		return fmt.Errorf("render %s: %w", tmpl, err)
	}
	var out strings.Builder
	if id != "" {
		out.WriteString("id: " + id + "\n")
	}
	out.WriteString("event: activity\n")
	for line := range strings.SplitSeq(strings.ReplaceAll(buf.String(), "\r", ""), "\n") {
		out.WriteString("data: " + line + "\n")
	}
	out.WriteString("\n")
	_, err := w.Write([]byte(out.String()))
	return err
}
