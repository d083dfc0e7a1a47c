package amtsim

import (
	"fmt"
	"strconv"
	"strings"
)

// Resource URI bases of the three schemas AMT serves.
const (
	amtSchema = "http://intel.com/wbem/wscim/1/amt-schema/1/"
	ipsSchema = "http://intel.com/wbem/wscim/1/ips-schema/1/"
	cimSchema = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
)

// lsaAccess says what the local system account may do with a class before activation. AMT lets the OS-side
// account read what provisioning needs and run host-based setup, nothing else.
type lsaAccess int

const (
	lsaNone lsaAccess = iota
	lsaRead           // Get, Enumerate, Pull
	lsaAll            // every action
)

// method implements one extrinsic method. It receives the <Method>_INPUT element (nil when the body was empty) and
// returns the properties of <Method>_OUTPUT, normally ending with ReturnValue.
type method func(d *Device, in *node) []prop

// classDef describes one WS-Management class the firmware serves.
type classDef struct {
	name string
	uri  string
	lsa  lsaAccess
	// instances renders every instance (Get picks by selector, Enumerate/Pull returns all). nil: not readable.
	instances func(d *Device) [][]prop
	// put applies a Put to instance i and returns nil or a fault. nil: Put not supported.
	put     func(d *Device, i int, in *node) *soapFault
	methods map[string]method
}

// classes maps resource URIs to their definitions; built once, read-only afterwards.
var classes = map[string]*classDef{}

func register(c *classDef) {
	c.uri = schemaFor(c.name) + c.name
	classes[c.uri] = c
}

func schemaFor(name string) string {
	switch {
	case strings.HasPrefix(name, "AMT_"):
		return amtSchema
	case strings.HasPrefix(name, "IPS_"):
		return ipsSchema
	}
	return cimSchema
}

// enumContext is a pending enumeration. AMT hands out contexts like "98000000-0000-0000-0000-000000000000";
// a device keeps only a few, as the firmware does.
type enumContext struct {
	id    uint32
	class *classDef
	live  bool
}

func enumContextString(id uint32) string {
	return fmt.Sprintf("%08X-0000-0000-0000-000000000000", id)
}

// fail records why the firmware refused something, for Snapshot.LastFailure.
func (d *Device) fail(format string, args ...any) {
	d.lastFailure = fmt.Sprintf(format, args...)
	d.failed = true
}

// dispatch runs an authenticated request and writes the reply envelope into w, or returns a fault.
func (d *Device) dispatch(w *xw, env *envelope) *soapFault {
	if env.action == "" {
		return faultHeaderRequired("Action")
	}
	if env.messageID == "" {
		return faultHeaderRequired("MessageID")
	}
	c := classes[env.resourceURI]
	if c == nil {
		d.fail("soap: unknown resource URI %q", env.resourceURI)
		return faultDestinationUnreachable()
	}
	action := env.action
	var methodName string
	switch action {
	case actionGet, actionEnumerate, actionPull, actionRelease:
	case actionPut, actionCreate, actionDelete:
	default:
		var ok bool
		methodName, ok = strings.CutPrefix(action, c.uri+"/")
		if !ok || c.methods[methodName] == nil {
			d.fail("soap: %s does not support action %q", c.name, action)
			return faultActionNotSupported()
		}
	}
	if d.mode == ModePreProvisioning {
		readOnly := action == actionGet || action == actionEnumerate || action == actionPull || action == actionRelease
		if c.lsa == lsaNone || (c.lsa == lsaRead && !readOnly) {
			d.fail("soap: %s %s needs an activated device and the admin account", c.name, action)
			return faultAccessDenied()
		}
	}

	switch action {
	case actionGet:
		if c.instances == nil {
			return faultActionNotSupported()
		}
		insts, i, f := d.selectInstance(c, env)
		if f != nil {
			return f
		}
		inst := insts[i]
		envelopeStart(w, []string{c.uri}, env.messageID, nsTransfer+"/GetResponse", d.nextMessageID(), c.uri)
		w.open("g", c.name)
		w.props("g", inst)
		w.close("g", c.name)
		envelopeEnd(w)
	case actionPut:
		if c.put == nil {
			d.fail("soap: %s does not support Put", c.name)
			return faultActionNotSupported()
		}
		_, i, f := d.selectInstance(c, env)
		if f != nil {
			return f
		}
		if env.body == nil || env.body.name != c.name {
			d.fail("soap: Put body is not a %s", c.name)
			return faultInvalidRepresentation("the body must be one " + c.name)
		}
		if f := c.put(d, i, env.body); f != nil {
			return f
		}
		inst := c.instances(d)[i]
		envelopeStart(w, []string{c.uri}, env.messageID, nsTransfer+"/PutResponse", d.nextMessageID(), c.uri)
		w.open("g", c.name)
		w.props("g", inst)
		w.close("g", c.name)
		envelopeEnd(w)
	case actionEnumerate:
		if c.instances == nil {
			return faultActionNotSupported()
		}
		d.enumNext++
		slot := 0
		for i := range d.enums {
			if !d.enums[i].live {
				slot = i
				break
			}
			if d.enums[i].id < d.enums[slot].id {
				slot = i
			}
		}
		d.enums[slot] = enumContext{id: d.enumNext, class: c, live: true}
		envelopeStart(w, []string{nsEnum}, env.messageID, nsEnum+"/EnumerateResponse", d.nextMessageID(), c.uri)
		w.open("g", "EnumerateResponse")
		w.elem("g", "EnumerationContext", enumContextString(d.enumNext))
		w.close("g", "EnumerateResponse")
		envelopeEnd(w)
	case actionPull, actionRelease:
		ctxText, _ := env.body.value("EnumerationContext")
		var e *enumContext
		for i := range d.enums {
			if d.enums[i].live && d.enums[i].class == c && strings.EqualFold(enumContextString(d.enums[i].id), ctxText) {
				e = &d.enums[i]
			}
		}
		if e == nil {
			d.fail("soap: unknown enumeration context %q", ctxText)
			return faultInvalidEnumerationContext()
		}
		e.live = false
		if action == actionRelease {
			envelopeStart(w, nil, env.messageID, nsEnum+"/ReleaseResponse", d.nextMessageID(), c.uri)
			envelopeEnd(w)
			return nil
		}
		envelopeStart(w, []string{nsEnum, c.uri, nsCommon}, env.messageID, nsEnum+"/PullResponse", d.nextMessageID(), c.uri)
		w.WriteString("<g:PullResponse><g:Items>")
		for _, inst := range c.instances(d) {
			w.open("h", c.name)
			w.props("h", inst)
			w.close("h", c.name)
		}
		w.WriteString("</g:Items><g:EndOfSequence></g:EndOfSequence></g:PullResponse>")
		envelopeEnd(w)
	case actionCreate:
		d.fail("soap: %s does not support Create", c.name)
		return faultActionNotSupported()
	case actionDelete:
		if c.instances == nil {
			return faultActionNotSupported()
		}
		// No simulated class has deletable instances; deleting one that does not exist is what unconfiguration
		// flows do, and AMT answers that no such resource exists.
		d.fail("soap: %s has no instance matching the selectors", c.name)
		return faultDestinationUnreachable()
	default:
		in := env.body
		if in != nil && in.name != methodName+"_INPUT" {
			d.fail("soap: body %q is not %s_INPUT", in.name, methodName)
			return faultSchemaValidation("expected " + methodName + "_INPUT")
		}
		out := c.methods[methodName](d, in)
		envelopeStart(w, []string{c.uri}, env.messageID, c.uri+"/"+methodName+"Response", d.nextMessageID(), c.uri)
		w.open("g", methodName+"_OUTPUT")
		w.props("g", out)
		w.close("g", methodName+"_OUTPUT")
		envelopeEnd(w)
	}
	return nil
}

// selectInstance picks the instance a Get/Put addresses: the one whose properties match every selector, or the
// first when there are no selectors (AMT's singletons are addressed without selectors).
func (d *Device) selectInstance(c *classDef, env *envelope) ([][]prop, int, *soapFault) {
	insts := c.instances(d)
	if len(env.selectors) == 0 {
		if len(insts) == 0 {
			d.fail("soap: %s has no instance", c.name)
			return nil, 0, faultDestinationUnreachable()
		}
		return insts, 0, nil
	}
next:
	for i, inst := range insts {
		for _, s := range env.selectors {
			found := false
			for _, p := range inst {
				if p.name == s.name && p.value == s.value {
					found = true
					break
				}
			}
			if !found {
				continue next
			}
		}
		return insts, i, nil
	}
	d.fail("soap: no %s instance matches the selectors %v", c.name, env.selectors)
	return nil, 0, faultInvalidSelectors()
}

// Helpers for typed input values.

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// parseBool accepts what xsd:boolean allows.
func parseBool(s string) (bool, bool) {
	switch strings.TrimSpace(s) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

func itoa(i int) string { return strconv.Itoa(i) }

func returnValue(v int) []prop { return []prop{{"ReturnValue", itoa(v)}} }
