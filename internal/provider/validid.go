package provider

// ValidInstanceID reports whether s has the form of an instance id: "i-"
// followed by 17 lowercase hex digits, as EC2's.
func ValidInstanceID(s string) bool {
	if len(s) != 19 || s[:2] != "i-" {
		return false
	}
	for _, c := range s[2:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
