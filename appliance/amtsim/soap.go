package amtsim

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Namespaces AMT uses in its replies, with the prefixes it binds them to. Clients must match by local name and
// namespace, never by prefix, but we reproduce AMT's prefixes so that byte-level comparisons with captured replies
// stay meaningful.
const (
	nsSOAP       = "http://www.w3.org/2003/05/soap-envelope"
	nsAddressing = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	nsWSMan      = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
	nsTrust      = "http://schemas.xmlsoap.org/ws/2005/02/trust"
	nsWSSecurity = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	nsCIMBinding = "http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd"
	nsEnum       = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
	nsTransfer   = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
	nsEventing   = "http://schemas.xmlsoap.org/ws/2004/08/eventing"
	nsCommon     = "http://schemas.dmtf.org/wbem/wscim/1/common"
	nsXSI        = "http://www.w3.org/2001/XMLSchema-instance"

	anonymousRole = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

	actionGet       = nsTransfer + "/Get"
	actionPut       = nsTransfer + "/Put"
	actionCreate    = nsTransfer + "/Create"
	actionDelete    = nsTransfer + "/Delete"
	actionEnumerate = nsEnum + "/Enumerate"
	actionPull      = nsEnum + "/Pull"
	actionRelease   = nsEnum + "/Release"
)

// Limits on what the envelope parser accepts. Real requests are a few kilobytes and a handful of levels deep; the
// limits only exist so that hostile input cannot make the firmware allocate without bound.
const (
	maxXMLDepth    = 32
	maxXMLElements = 4096
)

// node is one element of the request body, reduced to what the firmware needs: its local name, its text and its
// child elements. Namespaces are ignored on purpose (clients disagree on prefixes; AMT matches local names).
type node struct {
	name string
	text string
	kids []*node
}

// child returns the first child element with the given local name, or nil.
func (n *node) child(name string) *node {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if k.name == name {
			return k
		}
	}
	return nil
}

// value returns the trimmed text of the first child with the given local name and whether it exists.
func (n *node) value(name string) (string, bool) {
	c := n.child(name)
	if c == nil {
		return "", false
	}
	return strings.TrimSpace(c.text), true
}

// values returns the trimmed texts of every child with the given local name, in order.
func (n *node) values(name string) []string {
	if n == nil {
		return nil
	}
	var out []string
	for _, k := range n.kids {
		if k.name == name {
			out = append(out, strings.TrimSpace(k.text))
		}
	}
	return out
}

type selector struct{ name, value string }

// envelope is a parsed WS-Management request.
type envelope struct {
	action      string
	resourceURI string
	messageID   string
	selectors   []selector
	body        *node // first element child of Body; nil when Body is empty
}

var errNotEnvelope = errors.New("not a SOAP 1.2 envelope")

// parseEnvelope parses a WS-Management request by local names. It is strict about XML well-formedness (AMT's
// parser is) and about the SOAP 1.2 envelope namespace, and lenient about everything AMT ignores (order of header
// elements, extra headers, prefixes).
func parseEnvelope(data []byte) (*envelope, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	// Requests declare encoding="utf-8"; anything else is refused rather than silently misread.
	dec.CharsetReader = func(charset string, input io.Reader) (io.Reader, error) {
		if strings.EqualFold(charset, "utf-8") || strings.EqualFold(charset, "utf8") {
			return input, nil
		}
		return nil, fmt.Errorf("unsupported charset %q", charset)
	}

	env := &envelope{}
	// path holds the local names of the open elements; stack holds the body nodes being built.
	var path []string
	var stack []*node
	var text strings.Builder // text of the current header leaf
	var selName string
	elements := 0
	sawRoot := false

	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			elements++
			if elements > maxXMLElements || len(path) >= maxXMLDepth {
				return nil, errors.New("envelope too large or too deep")
			}
			if len(path) == 0 {
				if sawRoot || t.Name.Local != "Envelope" || t.Name.Space != nsSOAP {
					return nil, errNotEnvelope
				}
				sawRoot = true
			}
			path = append(path, t.Name.Local)
			text.Reset()
			switch {
			case len(path) == 4 && path[1] == "Header" && path[2] == "SelectorSet" && t.Name.Local == "Selector":
				selName = ""
				for _, a := range t.Attr {
					if a.Name.Local == "Name" {
						selName = a.Value
					}
				}
			case len(path) >= 3 && path[1] == "Body":
				n := &node{name: t.Name.Local}
				if len(stack) > 0 {
					parent := stack[len(stack)-1]
					parent.kids = append(parent.kids, n)
				} else if env.body == nil {
					env.body = n
				} else {
					// A second top-level body element: keep parsing for well-formedness, ignore it.
					n = &node{name: t.Name.Local}
				}
				stack = append(stack, n)
			}
		case xml.EndElement:
			if len(path) == 0 {
				return nil, errNotEnvelope
			}
			if len(path) == 3 && path[1] == "Header" {
				v := strings.TrimSpace(text.String())
				switch t.Name.Local {
				case "Action":
					env.action = v
				case "ResourceURI":
					env.resourceURI = v
				case "MessageID":
					env.messageID = v
				}
			}
			if len(path) == 4 && path[1] == "Header" && path[2] == "SelectorSet" && t.Name.Local == "Selector" {
				env.selectors = append(env.selectors, selector{name: selName, value: strings.TrimSpace(text.String())})
			}
			if len(path) >= 3 && path[1] == "Body" && len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			path = path[:len(path)-1]
			text.Reset()
		case xml.CharData:
			if len(path) >= 3 && path[1] == "Body" && len(stack) > 0 {
				stack[len(stack)-1].text += string(t)
			} else if text.Len() < 64<<10 {
				text.Write(t)
			}
		}
	}
	if !sawRoot {
		return nil, errNotEnvelope
	}
	return env, nil
}

// xw is a tiny XML writer for replies. Replies are generated, not marshalled, because AMT's prefix layout is not
// expressible with encoding/xml struct tags and because this keeps Exchange cheap.
type xw struct{ bytes.Buffer }

// elem writes <p:name>escaped value</p:name>.
func (w *xw) elem(prefix, name, value string) {
	w.WriteByte('<')
	w.WriteString(prefix)
	w.WriteByte(':')
	w.WriteString(name)
	w.WriteByte('>')
	_ = xml.EscapeText(w, []byte(value))
	w.WriteString("</")
	w.WriteString(prefix)
	w.WriteByte(':')
	w.WriteString(name)
	w.WriteByte('>')
}

func (w *xw) open(prefix, name string) {
	w.WriteByte('<')
	w.WriteString(prefix)
	w.WriteByte(':')
	w.WriteString(name)
	w.WriteByte('>')
}

func (w *xw) close(prefix, name string) {
	w.WriteString("</")
	w.WriteString(prefix)
	w.WriteByte(':')
	w.WriteString(name)
	w.WriteByte('>')
}

// prop is one property of a class instance or method output; repeated names are allowed (AllowedControlModes,
// LinkPolicy), as AMT repeats the element for array properties.
type prop struct{ name, value string }

func (w *xw) props(prefix string, ps []prop) {
	for _, p := range ps {
		w.elem(prefix, p.name, p.value)
	}
}

// envelopeStart writes the XML declaration, the envelope with AMT's namespace bindings (a..f fixed; extra bindings
// g, h, … as given) and the reply header.
func envelopeStart(w *xw, extraNS []string, relatesTo, action, messageID, resourceURI string) {
	w.WriteString(`<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:a="` + nsSOAP +
		`" xmlns:b="` + nsAddressing + `" xmlns:c="` + nsWSMan + `" xmlns:d="` + nsTrust +
		`" xmlns:e="` + nsWSSecurity + `" xmlns:f="` + nsCIMBinding + `"`)
	for i, ns := range extraNS {
		w.WriteString(` xmlns:`)
		w.WriteByte(byte('g' + i))
		w.WriteString(`="`)
		_ = xml.EscapeText(w, []byte(ns))
		w.WriteByte('"')
	}
	w.WriteString(` xmlns:xsi="` + nsXSI + `"><a:Header>`)
	w.elem("b", "To", anonymousRole)
	w.elem("b", "RelatesTo", relatesTo)
	w.WriteString(`<b:Action a:mustUnderstand="true">`)
	_ = xml.EscapeText(w, []byte(action))
	w.WriteString(`</b:Action>`)
	w.elem("b", "MessageID", messageID)
	if resourceURI != "" {
		w.elem("c", "ResourceURI", resourceURI)
	}
	w.WriteString(`</a:Header><a:Body>`)
}

func envelopeEnd(w *xw) { w.WriteString(`</a:Body></a:Envelope>`) }

// soapFault is a WS-Management fault as AMT sends it (HTTP 400, a:Fault with a:Sender and a subcode).
type soapFault struct {
	action  string // fault action URI
	subcode string // prefixed as in AMT's fault envelope: b: addressing, c: enumeration, e: wsman
	reason  string
	detail  string
}

// Faults the simulator uses. Texts are those of the WS-Addressing / WS-Management specifications (AMT quotes them).
func faultDestinationUnreachable() *soapFault {
	return &soapFault{nsAddressing + "/fault", "b:DestinationUnreachable",
		"No route can be determined to reach the destination role defined by the WSAddressing To.", ""}
}

func faultActionNotSupported() *soapFault {
	return &soapFault{nsAddressing + "/fault", "b:ActionNotSupported",
		"The action is not supported by the service.", ""}
}

func faultHeaderRequired(what string) *soapFault {
	return &soapFault{nsAddressing + "/fault", "b:MessageInformationHeaderRequired",
		"A required header representing a Message Addressing Property is not present", what}
}

func faultInvalidSelectors() *soapFault {
	return &soapFault{nsWSMan + "/fault", "e:InvalidSelectors",
		"The Selectors for the resource were not valid.", ""}
}

func faultAccessDenied() *soapFault {
	return &soapFault{nsWSMan + "/fault", "e:AccessDenied",
		"The sender was not authorized to access the resource.", ""}
}

func faultInvalidRepresentation(detail string) *soapFault {
	return &soapFault{nsWSMan + "/fault", "e:InvalidRepresentation",
		"The XML content was invalid.", detail}
}

func faultInvalidEnumerationContext() *soapFault {
	return &soapFault{nsEnum + "/fault", "c:InvalidEnumerationContext",
		"The supplied enumeration context is invalid.", ""}
}

func faultSchemaValidation(detail string) *soapFault {
	return &soapFault{nsWSMan + "/fault", "e:SchemaValidationError",
		"The supplied SOAP violates the corresponding XML Schema definition.", detail}
}

// writeFault renders a fault envelope. AMT binds a different prefix set in faults (a soap, b addressing,
// c enumeration, d transfer, e wsman, f eventing, g cimbinding, h trust, i wssecurity) and sends no ResourceURI.
func writeFault(w *xw, f *soapFault, relatesTo, messageID string) {
	w.WriteString(`<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:g="` + nsCIMBinding +
		`" xmlns:f="` + nsEventing + `" xmlns:e="` + nsWSMan + `" xmlns:d="` + nsTransfer +
		`" xmlns:c="` + nsEnum + `" xmlns:b="` + nsAddressing + `" xmlns:a="` + nsSOAP +
		`" xmlns:h="` + nsTrust + `" xmlns:i="` + nsWSSecurity + `" xmlns:xsi="` + nsXSI + `"><a:Header>`)
	w.elem("b", "To", anonymousRole)
	w.elem("b", "RelatesTo", relatesTo)
	w.WriteString(`<b:Action a:mustUnderstand="true">`)
	_ = xml.EscapeText(w, []byte(f.action))
	w.WriteString(`</b:Action>`)
	w.elem("b", "MessageID", messageID)
	w.WriteString(`</a:Header><a:Body><a:Fault><a:Code><a:Value>a:Sender</a:Value><a:Subcode>`)
	w.elem("a", "Value", f.subcode)
	w.WriteString(`</a:Subcode></a:Code><a:Reason><a:Text xml:lang="en-US">`)
	_ = xml.EscapeText(w, []byte(f.reason))
	w.WriteString(`</a:Text></a:Reason>`)
	w.elem("a", "Detail", f.detail)
	w.WriteString(`</a:Fault></a:Body></a:Envelope>`)
}
