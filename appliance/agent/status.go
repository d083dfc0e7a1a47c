package agent

import "encoding/json"

// Status is the JSON object a terminal message carries in its `message` field (§2.11). rpc-go prints Status,
// Network, CIRA and TLS, and (2.x) renders Components as a table.
type Status struct {
	Status           string      `json:"Status"`
	Network          string      `json:"Network,omitempty"`
	CIRAConnection   string      `json:"CIRAConnection,omitempty"`
	TLSConfiguration string      `json:"TLSConfiguration,omitempty"`
	Components       *Components `json:"Components,omitempty"`
}

// Components is RPS ≥ 2.38's per-feature result; all six keys are always present.
type Components struct {
	Activation      Component `json:"Activation"`
	WiredNetwork    Component `json:"WiredNetwork"`
	WirelessNetwork Component `json:"WirelessNetwork"`
	TLS             Component `json:"TLS"`
	CIRAProxy       Component `json:"CIRAProxy"`
	CIRAConnection  Component `json:"CIRAConnection"`
}

// Component results.
const (
	ResultSuccess       = "Success"
	ResultFailure       = "Failure"
	ResultNotApplicable = "NotApplicable"
)

// Component is one feature's result: Result, optional Mode (ACM, CCM, LocalProfileSync) and Details
// (sentence case, no trailing period).
type Component struct {
	Result  string `json:"Result"`
	Mode    string `json:"Mode,omitempty"`
	Details string `json:"Details,omitempty"`
}

// NotApplicable is the Component of a feature that did not run.
var NotApplicable = Component{Result: ResultNotApplicable}

// String encodes the status as the JSON text that travels in `message`.
func (s Status) String() string {
	b, err := json.Marshal(s)
	if err != nil { // cannot happen: only strings
		return `{"Status":"internal error encoding the status"}`
	}
	return string(b)
}
