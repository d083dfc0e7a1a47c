package provision

import "fmt"

// setupReturnText names IPS_HostBasedSetupService's ReturnValues (Setup, AdminSetup, UpgradeClientToAdmin).
func setupReturnText(rv int) string {
	names := map[int]string{
		1: "InternalError",
		2: "InvalidState (the device is not in the control mode this call needs)",
		3: "InvalidParam",
		4: "MethodDisabled",
		5: "AuthFailed (the firmware did not accept the signature or the certificate chain)",
		6: "FlashWriteLimitExceeded (too many activations; wait before retrying)",
	}
	return withCode(rv, names)
}

// chainReturnText names AddNextCertInChain's ReturnValues.
func chainReturnText(rv int) string {
	names := map[int]string{
		1: "InvalidParam",
		2: "InternalError",
		3: "InvalidState",
		4: "CertVerifyFailed (the firmware could not verify this certificate)",
		5: "CertChainLengthExceeded",
	}
	return withCode(rv, names)
}

// ptStatusText names the common AMT PT_STATUS codes other methods return.
func ptStatusText(rv int) string {
	names := map[int]string{
		1:    "PT_STATUS_INTERNAL_ERROR",
		4:    "PT_STATUS_NOT_PERMITTED",
		36:   "PT_STATUS_INVALID_PARAMETER",
		38:   "PT_STATUS_INVALID_PASSWORD",
		2054: "PT_STATUS_INVALID_NAME",
		2057: "PT_STATUS_DATA_MISSING",
		2065: "PT_STATUS_INVALID_PASSWORD",
	}
	return withCode(rv, names)
}

func withCode(rv int, names map[int]string) string {
	if n, ok := names[rv]; ok {
		return fmt.Sprintf("ReturnValue %d, %s", rv, n)
	}
	return fmt.Sprintf("ReturnValue %d", rv)
}
