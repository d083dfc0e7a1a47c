package web

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/amtedge/amtedge/appliance/catalog"
)

type actorKey struct{}

// WithActor returns ctx naming who makes the request ("admin:alice", "token:ci", "cli:1000"), for the catalog's
// change events. The daemon's authentication layers set it.
func WithActor(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, actorKey{}, name)
}

// ActorFrom returns the name WithActor set, or "unknown".
func ActorFrom(ctx context.Context) string {
	if s, ok := ctx.Value(actorKey{}).(string); ok && s != "" {
		return s
	}
	return "unknown"
}

// probeMethods are the methods the 405 answer's Allow header is built from.
var probeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPatch, http.MethodDelete}

// allowed lists the methods that have a route on r's path.
func (h *handler) allowed(r *http.Request) []string {
	var out []string
	for _, m := range probeMethods {
		probe := *r
		probe.Method = m
		if _, pattern := h.mux.Handler(&probe); pattern != "" {
			out = append(out, m)
		}
	}
	return out
}

// readBody reads a write's JSON body: Content-Type application/json (415 otherwise), at most
// catalog.MaxBodyBytes (413 beyond). It answers the request itself when it returns false.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		WriteJSON(w, http.StatusUnsupportedMediaType, ErrorBody{"Unsupported Media Type", "the request body must be JSON, sent with Content-Type: application/json"})
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, catalog.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			WriteJSON(w, http.StatusRequestEntityTooLarge, ErrorBody{"Content Too Large", "the request body is larger than " + strconv.Itoa(catalog.MaxBodyBytes) + " bytes"})
			return nil, false
		}
		WriteJSON(w, http.StatusBadRequest, ErrorBody{"Bad Request", "reading the request body failed"})
		return nil, false
	}
	return body, true
}

// writeVersioned answers an entry with its version as ETag.
func writeVersioned(w http.ResponseWriter, code int, version string, v any) {
	if version != "" {
		w.Header().Set("ETag", strconv.Quote(version))
	}
	WriteJSON(w, code, v)
}

// writeError answers a catalog error (see Catalog). A stale version answers the current entry, as RPS does, with
// its ETag; 412 instead of 409 when the version came from If-Match.
func writeError(w http.ResponseWriter, err error, viaIfMatch bool) {
	var ve *catalog.ValidationError
	var ce *catalog.ConflictError
	switch {
	case errors.As(err, &ve):
		WriteJSON(w, http.StatusBadRequest, ValidationErrors{ve.Errors})
	case errors.As(err, &ce):
		code := http.StatusConflict
		if ce.VersionMismatch && viaIfMatch {
			code = http.StatusPreconditionFailed
		}
		version := ""
		switch cur := ce.Current.(type) {
		case catalog.ProfileEntry:
			version = cur.Version
		case catalog.Domain:
			version = cur.Version
		}
		if ce.VersionMismatch && ce.Current != nil {
			w.Header().Set("X-Conflict-Reason", ce.Msg) // the body is the record; the reason travels beside it
			writeVersioned(w, code, version, ce.Current)
			return
		}
		writeVersioned(w, code, version, ErrorBody{http.StatusText(code), ce.Msg})
	case errors.Is(err, catalog.ErrNotFound):
		WriteJSON(w, http.StatusNotFound, ErrorBody{"Not Found", err.Error()})
	case errors.Is(err, catalog.ErrStoreUnavailable):
		WriteJSON(w, http.StatusServiceUnavailable, ErrorBody{"Service Unavailable", err.Error()})
	default:
		WriteJSON(w, http.StatusInternalServerError, ErrorBody{"Internal Server Error", "Operation failed: " + err.Error()})
	}
}

func (h *handler) createProfile(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	p, err := h.cfg.Catalog.CreateProfile(r.Context(), body, ActorFrom(r.Context()))
	if err != nil {
		writeError(w, err, false)
		return
	}
	writeVersioned(w, http.StatusCreated, p.Version, p)
}

func (h *handler) updateProfile(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	ifMatch := r.Header.Get("If-Match")
	p, err := h.cfg.Catalog.UpdateProfile(r.Context(), body, ifMatch, ActorFrom(r.Context()))
	if err != nil {
		writeError(w, err, ifMatch != "")
		return
	}
	writeVersioned(w, http.StatusOK, p.Version, p)
}

func (h *handler) deleteProfile(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.Catalog.DeleteProfile(r.Context(), r.PathValue("name"), ActorFrom(r.Context())); err != nil {
		writeError(w, err, false)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) createDomain(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	d, err := h.cfg.Catalog.CreateDomain(r.Context(), body, ActorFrom(r.Context()))
	if err != nil {
		writeError(w, err, false)
		return
	}
	writeVersioned(w, http.StatusCreated, d.Version, d)
}

func (h *handler) updateDomain(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	ifMatch := r.Header.Get("If-Match")
	d, err := h.cfg.Catalog.UpdateDomain(r.Context(), body, ifMatch, ActorFrom(r.Context()))
	if err != nil {
		writeError(w, err, ifMatch != "")
		return
	}
	writeVersioned(w, http.StatusOK, d.Version, d)
}

func (h *handler) deleteDomain(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.Catalog.DeleteDomain(r.Context(), r.PathValue("name"), ActorFrom(r.Context())); err != nil {
		writeError(w, err, false)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// inspectPFX previews an upload: what the certificate holds and whether it would import. Nothing is stored.
func (h *handler) inspectPFX(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	pfx, pw, suffix, err := catalog.DecodeInspect(body)
	if err != nil {
		writeError(w, err, false)
		return
	}
	WriteJSON(w, http.StatusOK, h.cfg.Catalog.InspectPFX(pfx, pw, suffix))
}

func (h *handler) domainCert(w http.ResponseWriter, r *http.Request) {
	rep, err := h.cfg.Catalog.DomainCert(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err, false)
		return
	}
	WriteJSON(w, http.StatusOK, rep)
}
