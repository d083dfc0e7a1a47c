package access

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ControlHandler serves the accounts and tokens for the `amtedge admin` CLI. It is mounted only on the control
// socket, whose peers the daemon has authorized by their kernel credentials; it must never be served on a
// network listener.
//
//	POST   /api/v1/accounts/init      {"user","password"}  the first admin account
//	POST   /api/v1/accounts/password  {"user","password"}  a new password; the user's sessions end
//	GET    /api/v1/tokens                                   [{name,scope,created,lastUsed}]
//	POST   /api/v1/tokens             {"name","scope"}      {"name","scope","secret"}: the only time the secret leaves
//	DELETE /api/v1/tokens/{name}
func (g *Guard) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/accounts/init", func(w http.ResponseWriter, r *http.Request) {
		var req AccountRequest
		if !decodeBody(w, r, &req) {
			return
		}
		if err := g.InitAdmin(req.User, req.Password); err != nil {
			writeControlError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, AccountResult{User: req.User, Message: "admin account " + req.User + " created"})
	})
	mux.HandleFunc("POST /api/v1/accounts/password", func(w http.ResponseWriter, r *http.Request) {
		var req AccountRequest
		if !decodeBody(w, r, &req) {
			return
		}
		if err := g.SetPassword(req.User, req.Password); err != nil {
			writeControlError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, AccountResult{User: req.User,
			Message: "password of " + req.User + " changed; its browser sessions ended"})
	})
	mux.HandleFunc("GET /api/v1/tokens", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, g.Tokens())
	})
	mux.HandleFunc("POST /api/v1/tokens", func(w http.ResponseWriter, r *http.Request) {
		var req TokenRequest
		if !decodeBody(w, r, &req) {
			return
		}
		secret, err := g.CreateToken(req.Name, req.Scope)
		if err != nil {
			writeControlError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, TokenCreated{Name: req.Name, Scope: req.Scope, Secret: secret})
	})
	mux.HandleFunc("DELETE /api/v1/tokens/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if err := g.RevokeToken(name); err != nil {
			writeControlError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, AccountResult{Message: "API token " + name + " revoked"})
	})
	// Everything else gets the JSON error shape too (ServeMux's own 404 and 405 answers are plain text).
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		allowed := map[string]string{"/api/v1/accounts/init": "POST", "/api/v1/accounts/password": "POST",
			"/api/v1/tokens": "GET, POST"}[r.URL.Path]
		if allowed == "" && strings.HasPrefix(r.URL.Path, "/api/v1/tokens/") {
			allowed = "DELETE"
		}
		if allowed == "" {
			writeError(w, http.StatusNotFound, "Not Found", "no such control API path: "+truncate(r.URL.Path, 100))
			return
		}
		w.Header().Set("Allow", allowed)
		writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed", r.Method+" is not allowed here: "+allowed)
	})
	return mux
}

// AccountRequest is the body of POST /api/v1/accounts/init and /password.
type AccountRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// AccountResult answers an account or token change.
type AccountResult struct {
	User    string `json:"user,omitempty"`
	Message string `json:"message"`
}

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Name  string `json:"name"`
	Scope Scope  `json:"scope"`
}

// TokenCreated answers POST /api/v1/tokens: the one time the secret is shown.
type TokenCreated struct {
	Name   string `json:"name"`
	Scope  Scope  `json:"scope"`
	Secret string `json:"secret"`
}

const maxControlBody = 64 << 10

// decodeBody reads a JSON request body strictly; on failure it has answered 400. Decoder errors name fields and
// offsets, never values, so a password in a malformed body is not echoed.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "Unsupported Media Type", "send JSON (Content-Type: application/json)")
		return false
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "Bad Request", "the request body is not the expected JSON object: "+jsonErrorText(err))
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "Bad Request", "the request body has data after the JSON object")
		return false
	}
	return true
}

// jsonErrorText describes a decoding error without quoting the input.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be a %s", te.Field, te.Type)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "empty or cut short"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "malformed"
}

// writeControlError maps the package's errors to status codes. Every error text of this package is free of
// secrets (validPassword never quotes the password).
func writeControlError(w http.ResponseWriter, err error) {
	code, word := http.StatusBadRequest, "Bad Request"
	switch {
	case errors.Is(err, ErrInitialized), errors.Is(err, ErrTokenExists):
		code, word = http.StatusConflict, "Conflict"
	case errors.Is(err, ErrNoSuchUser), errors.Is(err, ErrNoSuchToken):
		code, word = http.StatusNotFound, "Not Found"
	case errors.Is(err, errBusy):
		code, word = http.StatusServiceUnavailable, "Service Unavailable"
	case errors.As(err, new(internalError)):
		code, word = http.StatusInternalServerError, "Internal Server Error"
	}
	writeError(w, code, word, err.Error())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "Internal Server Error", "encoding the response failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}
