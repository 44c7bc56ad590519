package sentiment

import "fmt"

func errorf(format string, args ...any) error { return fmt.Errorf("sentiment: "+format, args...) }
