package wsman

import (
	"encoding/xml"
	"strconv"
	"strings"
)

// WS-Transfer and WS-Enumeration actions (Appendix A of the reference).
const (
	actionGet       = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
	actionEnumerate = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
	actionPull      = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull"

	// genericActionPrefix starts the actions that name an operation but not a class (transfer, enumeration,
	// eventing); their class comes from the ResourceURI.
	genericActionPrefix = "http://schemas.xmlsoap.org/ws/"
)

// request is one SOAP envelope to post, with what the transport needs to know about it.
type request struct {
	body        string
	action      string
	resourceURI string
	messageID   string
	name        string // ShortActionFor(action, resourceURI), for errors and Observe
	idempotent  bool   // may be sent again after a timeout, truncation or stale reply
}

// newRequest reads the WS-Addressing header of msg. A message it cannot read is still sent (AMT is the judge of
// what it accepts); it is then treated as non-idempotent and its reply is not correlated.
func newRequest(msg string) request {
	r := request{body: msg}
	var ok bool
	if r.action, r.resourceURI, r.messageID, ok = scanHeader(msg); !ok {
		r.action, r.resourceURI, r.messageID = readHeader(msg)
	}
	r.name = ShortActionFor(r.action, r.resourceURI)
	switch r.action {
	case actionGet, actionEnumerate, actionPull:
		r.idempotent = true
	}
	return r
}

// scanHeader reads the header the way go-wsman-messages writes it (`<a:Action>…</a:Action>`,
// `<w:ResourceURI>…</w:ResourceURI>`, `<a:MessageID>…</a:MessageID>`, before `<Body>`) without an XML decoder:
// every request goes through here. ok is false when the message is not in that form; readHeader then decodes it.
func scanHeader(msg string) (action, resourceURI, messageID string, ok bool) {
	head, _, found := strings.Cut(msg, "<Body")
	if !found {
		return "", "", "", false
	}
	get := func(open, close string) (string, bool) {
		_, after, found := strings.Cut(head, open)
		if !found {
			return "", false
		}
		v, _, found := strings.Cut(after, close)
		if !found || strings.ContainsAny(v, "<&") {
			return "", false // markup or entities: leave it to the decoder
		}
		return strings.TrimSpace(v), true
	}
	var ok1, ok2, ok3 bool
	action, ok1 = get("<a:Action>", "</a:Action>")
	resourceURI, ok2 = get("<w:ResourceURI>", "</w:ResourceURI>")
	messageID, ok3 = get("<a:MessageID>", "</a:MessageID>")
	return action, resourceURI, messageID, ok1 && ok2 && ok3
}

// readHeader returns the Action, ResourceURI and MessageID children of Envelope/Header, matched by local name.
// It stops at the Body, so message bodies are never decoded here.
func readHeader(msg string) (action, resourceURI, messageID string) {
	d := xml.NewDecoder(strings.NewReader(msg))
	depth := 0
	inHeader := false
	for {
		tok, err := d.Token()
		if err != nil {
			return
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case depth == 0 && t.Name.Local != "Envelope":
				return
			case depth == 1 && t.Name.Local == "Body":
				return
			case depth == 1 && t.Name.Local == "Header":
				inHeader = true
			case depth == 2 && inHeader:
				var v string
				switch t.Name.Local {
				case "Action":
					err = d.DecodeElement(&v, &t)
					action = strings.TrimSpace(v)
				case "ResourceURI":
					err = d.DecodeElement(&v, &t)
					resourceURI = strings.TrimSpace(v)
				case "MessageID":
					err = d.DecodeElement(&v, &t)
					messageID = strings.TrimSpace(v)
				default:
					err = d.Skip()
				}
				if err != nil {
					return
				}
				continue // DecodeElement and Skip consumed the end element
			}
			depth++
		case xml.EndElement:
			depth--
			if depth == 1 {
				inHeader = false
			}
		}
	}
}

// ShortAction names a WS-Management action for errors, records and metrics:
// "…/IPS_HostBasedSetupService/AdminSetup" => "IPS_HostBasedSetupService.AdminSetup". A generic WS-Transfer or
// WS-Enumeration action ("…/transfer/Get") names no class and becomes just "Get"; use ShortActionFor to add the
// class from the resource URI.
func ShortAction(action string) string {
	return ShortActionFor(action, "")
}

// ShortActionFor is ShortAction with the request's ResourceURI, which supplies the class of generic actions:
// ("…/transfer/Get", "…/AMT_GeneralSettings") => "AMT_GeneralSettings.Get".
func ShortActionFor(action, resourceURI string) string {
	action = strings.TrimRight(strings.TrimSpace(action), "/")
	if action == "" {
		return "unknown action"
	}
	op := lastSegment(action)
	var class string
	if strings.HasPrefix(action, genericActionPrefix) {
		class = lastSegment(strings.TrimRight(strings.TrimSpace(resourceURI), "/"))
	} else if i := strings.LastIndexByte(action, '/'); i > 0 {
		class = lastSegment(action[:i])
	}
	if class == "" {
		return printable(op, 80)
	}
	return printable(class+"."+op, 120)
}

func lastSegment(s string) string {
	return s[strings.LastIndexByte(s, '/')+1:]
}

// Fixed parts of the request (§2.6). Header order: Authorization, Host, Transfer-Encoding, Content-Type,
// Connection.
const (
	requestLine      = "POST /wsman HTTP/1.1\r\n"
	requestHeaderEnd = "Transfer-Encoding: chunked\r\n" +
		"Content-Type: application/soap+xml;charset=UTF-8\r\n" +
		"Connection: close\r\n" +
		"\r\n"
)

// appendRequest appends the raw HTTP request for body to dst. authorization is the value of the Authorization
// header, or "" before a challenge is known. The body goes as ONE chunk whose size is its UTF-8 byte length in
// upper-case hex (RPS counts UTF-16 units, which breaks non-ASCII bodies).
func appendRequest(dst []byte, hostHeader, authorization, body string) []byte {
	dst = append(dst, requestLine...)
	if authorization != "" {
		dst = append(dst, "Authorization: "...)
		dst = append(dst, authorization...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "Host: "...)
	dst = append(dst, hostHeader...)
	dst = append(dst, "\r\n"...)
	dst = append(dst, requestHeaderEnd...)
	dst = appendUpperHex(dst, uint64(len(body)))
	dst = append(dst, "\r\n"...)
	dst = append(dst, body...)
	dst = append(dst, "\r\n0\r\n\r\n"...)
	return dst
}

func appendUpperHex(dst []byte, n uint64) []byte {
	start := len(dst)
	dst = strconv.AppendUint(dst, n, 16)
	for i := start; i < len(dst); i++ {
		if c := dst[i]; c >= 'a' && c <= 'f' {
			dst[i] = c - 'a' + 'A'
		}
	}
	return dst
}
