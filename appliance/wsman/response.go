package wsman

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// response is a parsed raw HTTP/1.1 reply.
type response struct {
	status  int
	reason  string
	headers []headerField
	body    []byte
}

type headerField struct {
	name, value string
}

// header returns the values of the header name (case-insensitive) in order.
func (r *response) header(name string) []string {
	var out []string
	for _, h := range r.headers {
		if strings.EqualFold(h.name, name) {
			out = append(out, h.value)
		}
	}
	return out
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrTruncated}, args...)...)
}

// parseResponse parses a raw HTTP/1.1 reply as the agent relays it: status line, headers, then a body framed by
// chunked transfer coding, Content-Length, or the end of the bytes. Interim 1xx replies are skipped.
//
// When the status line and headers parse but the body framing does not, it returns the response (without body)
// together with an error, so that a 401 whose small HTML body was cut short still yields its challenge. Every
// error wraps ErrTruncated.
func parseResponse(raw []byte) (*response, error) {
	resp, rest, err := parseHead(raw)
	for err == nil && resp.status >= 100 && resp.status < 200 {
		resp, rest, err = parseHead(rest)
	}
	if err != nil {
		return nil, err
	}
	resp.body, err = readBody(resp, rest)
	if err != nil {
		return resp, err
	}
	return resp, nil
}

// cutLine splits off one line ending in LF (a preceding CR is dropped). ok is false when no LF remains.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, b, false
	}
	line = b[:i]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, b[i+1:], true
}

func parseHead(raw []byte) (*response, []byte, error) {
	if len(raw) == 0 {
		return nil, nil, malformed("empty reply")
	}
	line, rest, ok := cutLine(raw)
	if !ok {
		return nil, nil, malformed("status line cut short")
	}
	resp := &response{}
	if !bytes.HasPrefix(line, []byte("HTTP/")) {
		return nil, nil, malformed("reply does not start with an HTTP status line")
	}
	_, after, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return nil, nil, malformed("status line without status code")
	}
	code, reason, _ := bytes.Cut(after, []byte(" "))
	if len(code) != 3 || code[0] < '1' || code[0] > '5' || !isDigits(code) {
		return nil, nil, malformed("bad status code %q", printable(string(code), 8))
	}
	resp.status, _ = strconv.Atoi(string(code))
	resp.reason = printable(strings.TrimSpace(string(reason)), 64)

	for {
		line, rest, ok = cutLine(rest)
		if !ok {
			return nil, nil, malformed("header block cut short")
		}
		if len(line) == 0 {
			return resp, rest, nil
		}
		if line[0] == ' ' || line[0] == '\t' { // obsolete line folding
			if len(resp.headers) == 0 {
				return nil, nil, malformed("header continuation without a header")
			}
			h := &resp.headers[len(resp.headers)-1]
			h.value += " " + strings.TrimSpace(string(line))
			continue
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
			return nil, nil, malformed("bad header line")
		}
		resp.headers = append(resp.headers, headerField{
			name:  string(name),
			value: strings.TrimSpace(string(value)),
		})
	}
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// readBody applies the message framing of RFC 9112 §6.3 as far as a closed-connection reply needs it.
func readBody(resp *response, rest []byte) ([]byte, error) {
	if te := resp.header("Transfer-Encoding"); len(te) > 0 {
		codings := strings.Split(te[len(te)-1], ",")
		if strings.EqualFold(strings.TrimSpace(codings[len(codings)-1]), "chunked") {
			return dechunk(rest)
		}
		return rest, nil // not chunked last: the body runs to the end of the connection
	}
	if cl := resp.header("Content-Length"); len(cl) > 0 {
		n := -1
		for _, v := range cl {
			for f := range strings.SplitSeq(v, ",") {
				f = strings.TrimSpace(f)
				m, err := strconv.Atoi(f)
				if err != nil || m < 0 || !isDigits([]byte(f)) || (n >= 0 && m != n) {
					return nil, malformed("bad Content-Length")
				}
				n = m
			}
		}
		if len(rest) < n {
			return nil, malformed("body has %d of %d bytes", len(rest), n)
		}
		return rest[:n], nil
	}
	return rest, nil
}

// dechunk decodes a chunked body: chunk boundaries may fall anywhere, chunk extensions after ';' are ignored,
// and the body must end with the zero-size chunk (trailers and the final CRLF after it are optional, since the
// connection is closed anyway).
func dechunk(b []byte) ([]byte, error) {
	body := make([]byte, 0, len(b))
	for n := 1; ; n++ {
		line, rest, ok := cutLine(b)
		if !ok {
			if len(bytes.TrimSpace(b)) == 0 {
				return nil, malformed("chunked body ends before the last chunk")
			}
			return nil, malformed("chunk %d size line cut short", n)
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		line = bytes.Trim(line, " \t")
		if len(line) == 0 || len(line) > 8 {
			return nil, malformed("chunk %d has a bad size line", n)
		}
		size, err := strconv.ParseUint(string(line), 16, 32)
		if err != nil {
			return nil, malformed("chunk %d has a bad size line", n)
		}
		if size == 0 {
			return body, nil
		}
		if uint64(len(rest)) < size {
			return nil, malformed("chunk %d has %d of %d bytes", n, len(rest), size)
		}
		body = append(body, rest[:size]...)
		rest = rest[size:]
		switch {
		case bytes.HasPrefix(rest, []byte("\r\n")):
			rest = rest[2:]
		case bytes.HasPrefix(rest, []byte("\n")):
			rest = rest[1:]
		case len(rest) == 0 || bytes.Equal(rest, []byte("\r")):
			return nil, malformed("chunked body ends after chunk %d", n)
		default:
			return nil, malformed("chunk %d is longer than its size", n)
		}
		b = rest
	}
}

// envelopeInfo is what the transport checks in a reply envelope before handing it to the caller.
type envelopeInfo struct {
	relatesTo    string
	hasRelatesTo bool
	fault        bool // Body's first element is a SOAP Fault
}

// inspectEnvelope checks that body is one SOAP Envelope that was not cut short (a reply framed by the end of the
// connection can be), and returns its Header/RelatesTo and whether Body holds a Fault. Elements are matched by
// local name, whatever their prefix.
//
// Only the Header and the start of the Body are tokenised; the rest is checked by finding the root's end tag
// with nothing but white space after it. That is what catches truncation, at a fraction of the cost of
// tokenising every reply twice (the caller's decoder walks the whole body anyway and rejects what is not
// well-formed).
func inspectEnvelope(body []byte) (envelopeInfo, error) {
	var info envelopeInfo
	d := xml.NewDecoder(bytes.NewReader(body))
	depth := 0
	inHeader, inBody := false, false
	for {
		tok, err := d.Token()
		if err != nil {
			// The decoder's message may quote reply content; keep it out of the error.
			return info, malformed("reply body is not a well-formed SOAP envelope")
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case depth == 0:
				if t.Name.Local != "Envelope" {
					return info, malformed("reply body is not a single SOAP envelope")
				}
			case depth == 1:
				inHeader = t.Name.Local == "Header"
				inBody = t.Name.Local == "Body"
			case depth == 2 && inHeader && t.Name.Local == "RelatesTo" && !info.hasRelatesTo:
				var v string
				if err := d.DecodeElement(&v, &t); err != nil {
					return info, malformed("reply body is not well-formed XML")
				}
				info.relatesTo, info.hasRelatesTo = strings.TrimSpace(v), true
				continue
			case depth == 2 && inBody:
				info.fault = t.Name.Local == "Fault"
				return info, checkEnvelopeEnd(body, d.InputOffset())
			}
			depth++
		case xml.EndElement:
			depth--
			switch {
			case depth == 1 && inBody: // an empty Body
				return info, checkEnvelopeEnd(body, d.InputOffset())
			case depth == 0: // an Envelope without Body, read to its end
				if len(bytes.TrimSpace(body[d.InputOffset():])) > 0 {
					return info, malformed("reply body has data after its SOAP envelope")
				}
				return info, nil
			}
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return info, malformed("reply body has text outside the envelope")
			}
		}
	}
}

// checkEnvelopeEnd checks that the root element's end tag follows from offset on and that only white space
// comes after it.
func checkEnvelopeEnd(body []byte, from int64) error {
	name := rootName(body)
	if name == "" {
		return malformed("reply body is not a single SOAP envelope")
	}
	end := "</" + name + ">"
	rest := body[from:]
	i := bytes.Index(rest, []byte(end))
	if i < 0 {
		return malformed("reply body ends before its SOAP envelope does")
	}
	if len(bytes.TrimSpace(rest[i+len(end):])) > 0 {
		return malformed("reply body has data after its SOAP envelope")
	}
	return nil
}

// rootName returns the raw (prefixed) name of the document's first element.
func rootName(body []byte) string {
	for i := 0; i < len(body); i++ {
		if body[i] != '<' || i+1 >= len(body) || body[i+1] == '?' || body[i+1] == '!' {
			continue
		}
		j := i + 1
		for j < len(body) && !strings.ContainsRune(" \t\r\n/>", rune(body[j])) {
			j++
		}
		return string(body[i+1 : j])
	}
	return ""
}

// soapFault is a SOAP 1.2 fault matched by local names.
type soapFault struct {
	Body struct {
		Fault *struct {
			Code struct {
				Value   string `xml:"Value"`
				Subcode struct {
					Value string `xml:"Value"`
				} `xml:"Subcode"`
			} `xml:"Code"`
			Reason struct {
				Text []string `xml:"Text"`
			} `xml:"Reason"`
			Detail struct {
				Inner string `xml:",innerxml"`
			} `xml:"Detail"`
		} `xml:"Fault"`
	} `xml:"Body"`
}

// parseFault returns the SOAP fault in body, or nil when body is not a SOAP envelope with a Fault.
func parseFault(status int, body []byte) *Fault {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	var env soapFault
	if err := xml.Unmarshal(body, &env); err != nil || env.Body.Fault == nil {
		return nil
	}
	f := env.Body.Fault
	out := &Fault{
		Status:  status,
		Code:    localPart(f.Code.Value),
		Subcode: localPart(f.Code.Subcode.Value),
		Detail:  printable(strings.TrimSpace(xmlText(f.Detail.Inner)), 256),
	}
	if len(f.Reason.Text) > 0 {
		out.Reason = printable(strings.Join(strings.Fields(f.Reason.Text[0]), " "), 512)
	}
	return out
}

// localPart drops the namespace prefix of a QName value such as "e:AlreadyExists".
func localPart(qname string) string {
	qname = strings.TrimSpace(qname)
	if i := strings.LastIndexByte(qname, ':'); i >= 0 {
		qname = qname[i+1:]
	}
	return printable(qname, 80)
}

// xmlText returns the character data inside an XML fragment (element markup removed), whitespace-collapsed.
func xmlText(fragment string) string {
	d := xml.NewDecoder(strings.NewReader(fragment))
	var b strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		if cd, ok := tok.(xml.CharData); ok {
			if s := strings.TrimSpace(string(cd)); s != "" {
				if b.Len() > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(s)
			}
		}
	}
	return b.String()
}
