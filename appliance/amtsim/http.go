package amtsim

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

// Limits of the simulated web server. AMT's own are not published; these are generous for WS-Management and keep
// a hostile request from costing much.
const (
	maxHeaderBytes = 16 << 10
	maxBodyBytes   = 1 << 20
)

// httpRequest is what the firmware keeps of a parsed request.
type httpRequest struct {
	target        string // request-target, "/wsman"
	host          string
	authorization string
	body          []byte
}

// parseStatus says how the firmware reacts to a request it has read.
type parseStatus int

const (
	parseOK         parseStatus = iota
	parseIncomplete             // the request is not complete: the firmware keeps waiting and never answers
	parseBad                    // 400 Bad Request
	parseNotFound               // 404 Not Found
	parseMethod                 // 405 Method Not Allowed
	parseTooLarge               // 413 Request Entity Too Large
	parseNotImpl                // 501 Not Implemented (an unknown transfer coding)
)

// parseRequest reads one raw HTTP/1.1 request the way AMT's embedded web server does: CRLF line endings, a Host
// header, and a body framed by chunked transfer coding or Content-Length. Chunk sizes are byte counts; a chunk
// whose size does not match its data is not followed by CRLF and is refused, and a size larger than the data leaves
// the server waiting for bytes that never come (parseIncomplete), as a real device would.
func parseRequest(raw []byte) (httpRequest, parseStatus, string) {
	var req httpRequest
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		if len(raw) > maxHeaderBytes {
			return req, parseBad, "header section too long"
		}
		return req, parseIncomplete, "header section not terminated"
	}
	if end > maxHeaderBytes {
		return req, parseBad, "header section too long"
	}
	head := string(raw[:end])
	rest := raw[end+4:]

	line, headers, _ := strings.Cut(head, "\r\n")
	method, remainder, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(remainder, " ")
	if !ok1 || !ok2 || method == "" || target == "" || proto != "HTTP/1.1" {
		return req, parseBad, "malformed request line"
	}
	req.target = target

	var (
		chunked       bool
		contentLength = -1
		hostSeen      bool
	)
	for headers != "" {
		var h string
		h, headers, _ = strings.Cut(headers, "\r\n")
		name, value, ok := strings.Cut(h, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t\n\r") || strings.ContainsAny(value, "\r\n") {
			return req, parseBad, "malformed header line"
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "host":
			if hostSeen {
				return req, parseBad, "duplicate Host header"
			}
			hostSeen = true
			req.host = value
		case "authorization":
			req.authorization = value
		case "transfer-encoding":
			if !strings.EqualFold(value, "chunked") {
				return req, parseNotImpl, "unsupported transfer coding " + value
			}
			chunked = true
		case "content-length":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || (contentLength >= 0 && n != contentLength) {
				return req, parseBad, "invalid Content-Length"
			}
			if n > maxBodyBytes {
				return req, parseTooLarge, "body too large"
			}
			contentLength = n
		}
	}
	if !hostSeen {
		return req, parseBad, "missing Host header"
	}
	if chunked && contentLength >= 0 {
		// RFC 9112 lets a server pick; AMT-like strictness avoids request-smuggling ambiguities.
		return req, parseBad, "both Transfer-Encoding and Content-Length"
	}

	switch {
	case chunked:
		body, st, why := dechunk(rest)
		if st != parseOK {
			return req, st, why
		}
		req.body = body
	case contentLength >= 0:
		if len(rest) < contentLength {
			return req, parseIncomplete, "body shorter than Content-Length"
		}
		req.body = rest[:contentLength]
	}

	if method != "POST" {
		return req, parseMethod, "method " + method + " not allowed"
	}
	if target != "/wsman" {
		return req, parseNotFound, "no such path " + target
	}
	return req, parseOK, ""
}

// dechunk decodes a chunked body strictly (RFC 9112 §7.1): hex size, optional extensions, CRLF, exactly size
// bytes, CRLF; a zero-size chunk, optional trailers and a final CRLF end it.
func dechunk(b []byte) ([]byte, parseStatus, string) {
	var body []byte
	for {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			if len(b) > 1024 {
				return nil, parseBad, "chunk size line too long"
			}
			return nil, parseIncomplete, "chunk size line not terminated"
		}
		sizeText := string(b[:i])
		if semi := strings.IndexByte(sizeText, ';'); semi >= 0 {
			sizeText = sizeText[:semi]
		}
		sizeText = strings.TrimRight(sizeText, " \t")
		if sizeText == "" || len(sizeText) > 8 {
			return nil, parseBad, "invalid chunk size"
		}
		size, err := strconv.ParseUint(sizeText, 16, 32)
		if err != nil {
			return nil, parseBad, "invalid chunk size"
		}
		b = b[i+2:]
		if size == 0 {
			// Trailer section: header lines until an empty line.
			for {
				j := bytes.Index(b, []byte("\r\n"))
				if j < 0 {
					return nil, parseIncomplete, "chunked body not terminated"
				}
				if j == 0 {
					return body, parseOK, ""
				}
				if !bytes.Contains(b[:j], []byte(":")) {
					return nil, parseBad, "malformed trailer"
				}
				b = b[j+2:]
			}
		}
		if uint64(len(body))+size > maxBodyBytes {
			return nil, parseTooLarge, "body too large"
		}
		if uint64(len(b)) < size+2 {
			return nil, parseIncomplete, "chunk data shorter than its size"
		}
		if b[size] != '\r' || b[size+1] != '\n' {
			return nil, parseBad, "chunk data does not match its size"
		}
		body = append(body, b[:size]...)
		b = b[size+2:]
	}
}

var statusText = map[int]string{
	400: "Bad Request",
	401: "Unauthorized",
	403: "Forbidden",
	404: "Not Found",
	405: "Method Not Allowed",
	413: "Request Entity Too Large",
	500: "Internal Server Error",
	501: "Not Implemented",
	503: "Service Unavailable",
}

func reasonPhrase(code int) string {
	if s, ok := statusText[code]; ok {
		return s
	}
	return "Error"
}

// serverHeader is AMT's Server header value: product name, firmware version and build.
func (d *Device) serverHeader() string {
	return "Intel(R) Active Management Technology " + d.cfg.Version + "." + d.cfg.Build
}

// htmlReply renders a non-SOAP reply the way AMT does for 401/400/404/…: text/html, Content-Length, Connection:
// close, a small HTML page.
func (d *Device) htmlReply(code int, extraHeader, message string) []byte {
	page := `<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN" >` +
		`<html lang="en"><head><link rel=stylesheet href=/styles.css>` +
		`<meta http-equiv="Content-Type" content="text/html; charset=utf-8">` +
		`<title>Intel&reg; Active Management Technology</title></head><body>` +
		`<h1>Intel<sup>&reg;</sup> Active Management Technology</h1>` +
		`<h2 class=warn>` + message + `</h2></body></html>`
	var b bytes.Buffer
	b.Grow(len(page) + 320)
	b.WriteString("HTTP/1.1 ")
	b.WriteString(strconv.Itoa(code))
	b.WriteByte(' ')
	b.WriteString(reasonPhrase(code))
	b.WriteString("\r\n")
	if extraHeader != "" {
		b.WriteString(extraHeader)
		b.WriteString("\r\n")
	}
	b.WriteString("Content-Type: text/html\r\nServer: ")
	b.WriteString(d.serverHeader())
	b.WriteString("\r\nContent-Length: ")
	b.WriteString(strconv.Itoa(len(page)))
	b.WriteString("\r\nConnection: close\r\n\r\n")
	b.WriteString(page)
	return b.Bytes()
}

// soapReply renders a SOAP reply (200, or 400 for faults) with AMT's headers and the body split over several chunks
// at pseudo-random byte offsets — boundaries fall inside element names, values and multi-byte characters, which is
// what a de-chunker must survive.
func (d *Device) soapReply(code int, body []byte, seed uint64) []byte {
	var b bytes.Buffer
	b.Grow(len(body) + 256 + len(body)/64)
	b.WriteString("HTTP/1.1 ")
	b.WriteString(strconv.Itoa(code))
	b.WriteByte(' ')
	if code == 200 {
		b.WriteString("OK")
	} else {
		b.WriteString(reasonPhrase(code))
	}
	b.WriteString("\r\nDate: ")
	b.WriteString(time.Now().UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT"))
	b.WriteString("\r\nServer: ")
	b.WriteString(d.serverHeader())
	b.WriteString("\r\nX-Frame-Options: DENY\r\nContent-Type: application/soap+xml; charset=UTF-8\r\n" +
		"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")

	rnd := seed | 1
	rest := body
	for first := true; len(rest) > 0; first = false {
		// xorshift64: cheap, deterministic per request, good enough to scatter boundaries.
		rnd ^= rnd << 13
		rnd ^= rnd >> 7
		rnd ^= rnd << 17
		limit := min(len(rest), 760)
		if first && len(rest) > 1 {
			limit = min(limit, len(rest)-1) // always at least two chunks
		}
		n := 1 + int(rnd%uint64(limit))
		size := strconv.FormatUint(uint64(n), 16)
		for i := len(size); i < 4; i++ { // AMT pads chunk sizes to four upper-case hex digits
			b.WriteByte('0')
		}
		b.WriteString(strings.ToUpper(size))
		b.WriteString("\r\n")
		b.Write(rest[:n])
		b.WriteString("\r\n")
		rest = rest[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.Bytes()
}

// truncate cuts a reply in the middle of its body, which is what the appliance receives when rpc-go's 100 ms idle
// timeout fires while AMT pauses mid-reply.
func truncate(reply []byte) []byte {
	end := bytes.Index(reply, []byte("\r\n\r\n"))
	if end < 0 {
		return reply[:len(reply)/2]
	}
	bodyStart := end + 4
	return reply[:bodyStart+(len(reply)-bodyStart)/2]
}
