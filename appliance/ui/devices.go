package ui

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/amtedge/amtedge/appliance/inventory"
)

const devicesPerPage = 50

// deviceFilter is the /devices query: free text over the device's strings, and exact filters.
type deviceFilter struct {
	Q       string
	Mode    string // "", none, ccm, acm
	Profile string
	Result  string // "", ok, failed
	Page    int    // 1-based
}

func parseDeviceFilter(r *http.Request) (deviceFilter, string) {
	q := r.URL.Query()
	f := deviceFilter{Q: strings.TrimSpace(q.Get("q")), Mode: q.Get("mode"), Profile: q.Get("profile"), Result: q.Get("result"), Page: 1}
	var problems []string
	if !slices.Contains([]string{"", "none", "ccm", "acm"}, f.Mode) {
		problems = append(problems, "mode must be none, ccm or acm")
		f.Mode = ""
	}
	if !slices.Contains([]string{"", "ok", "failed"}, f.Result) {
		problems = append(problems, "result must be ok or failed")
		f.Result = ""
	}
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 1_000_000 {
			problems = append(problems, "page must be a whole number from 1")
		} else {
			f.Page = n
		}
	}
	return f, strings.Join(problems, "; ")
}

func (f deviceFilter) match(r inventory.Record) bool {
	switch f.Mode {
	case "none":
		if r.ModeAfter != 0 {
			return false
		}
	case "ccm":
		if r.ModeAfter != 1 {
			return false
		}
	case "acm":
		if r.ModeAfter != 2 {
			return false
		}
	}
	if f.Profile != "" && r.Profile != f.Profile {
		return false
	}
	if (f.Result == "ok" && !r.Success) || (f.Result == "failed" && r.Success) {
		return false
	}
	if f.Q == "" {
		return true
	}
	q := strings.ToLower(f.Q)
	for _, s := range []string{r.UUID, r.Hostname, r.DNSSuffix, r.Profile, r.Domain, r.Status, r.Remote, r.FirmwareVer} {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

// PageQuery is the filter as the URL query of another page of the list.
func (f deviceFilter) PageQuery(page int) string {
	v := url.Values{}
	for k, val := range map[string]string{"q": f.Q, "mode": f.Mode, "profile": f.Profile, "result": f.Result} {
		if val != "" {
			v.Set(k, val)
		}
	}
	v.Set("page", strconv.Itoa(page))
	return "?" + v.Encode()
}

type devicesView struct {
	Filter   deviceFilter
	Problem  string
	Profiles []string
	List     []inventory.Record
	Total    int
	Pages    int
	Prev     int // 0: none
	Next     int // 0: none
}

func (h *handler) devices(w http.ResponseWriter, r *http.Request) {
	f, problem := parseDeviceFilter(r)
	v := devicesView{Filter: f, Problem: problem}
	seen := map[string]bool{}
	var matched []inventory.Record
	for _, rec := range h.cfg.Devices.Latest() {
		if rec.Profile != "" && !seen[rec.Profile] {
			seen[rec.Profile] = true
			v.Profiles = append(v.Profiles, rec.Profile)
		}
		if f.match(rec) {
			matched = append(matched, rec)
		}
	}
	slices.Sort(v.Profiles)
	v.Total = len(matched)
	v.Pages = max(1, (v.Total+devicesPerPage-1)/devicesPerPage)
	if f.Page > v.Pages {
		f.Page = v.Pages
		v.Filter.Page = f.Page
	}
	lo := (f.Page - 1) * devicesPerPage
	v.List = matched[lo:min(lo+devicesPerPage, len(matched))]
	if f.Page > 1 {
		v.Prev = f.Page - 1
	}
	if f.Page < v.Pages {
		v.Next = f.Page + 1
	}
	code := http.StatusOK
	if problem != "" {
		code = http.StatusBadRequest
	}
	h.render(w, r, code, "devices", h.newView(r, "Devices", "devices", v))
}

type deviceView struct {
	UUID     string
	Latest   inventory.Record
	Records  []recordView
	Revealed *revealed
}

type recordView struct {
	inventory.Record
	FailedStep string
}

type revealed struct {
	AMT, MEBx string
	Error     string
}

func (h *handler) deviceData(uuid string) (deviceView, bool) {
	recs := h.cfg.Devices.Device(uuid)
	if len(recs) == 0 {
		return deviceView{}, false
	}
	v := deviceView{UUID: uuid, Latest: recs[0]}
	for _, rec := range recs {
		v.Records = append(v.Records, recordView{Record: rec, FailedStep: failedStep(rec)})
	}
	return v, true
}

func (h *handler) device(w http.ResponseWriter, r *http.Request) {
	uuid := r.PathValue("uuid")
	v, ok := h.deviceData(uuid)
	if !ok {
		h.notFound(w, r, "The box has no record of device "+uuid+".")
		return
	}
	h.render(w, r, http.StatusOK, "device", h.newView(r, "Device "+uuid, "devices", v))
}

// reveal shows a device's passwords once, in the answer to a POST (CSRF-checked by Auth.Page), never in a URL; the
// page is no-store like every page. Reveal writes the audit record; the passwords are never logged here.
func (h *handler) reveal(w http.ResponseWriter, r *http.Request) {
	uuid := r.PathValue("uuid")
	v, ok := h.deviceData(uuid)
	if !ok {
		h.notFound(w, r, "The box has no record of device "+uuid+".")
		return
	}
	user, _ := h.cfg.Auth.User(r)
	amt, mebx, err := h.cfg.Reveal(r.Context(), uuid, user)
	v.Revealed = &revealed{AMT: amt, MEBx: mebx}
	if err != nil {
		v.Revealed = &revealed{Error: err.Error()}
	}
	w.Header().Set("Pragma", "no-cache")
	h.render(w, r, http.StatusOK, "device", h.newView(r, "Device "+uuid, "devices", v))
}
