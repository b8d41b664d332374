package contract

// The ports. The prober writes its events to a result port, never to the
// console, so that kernel messages never interleave with results; a
// prober that waits for its job (Config.JobPort) reads it from the job
// port. Which of these a guest has is the VM's business (vm's machines).
const (
	// ResultPort is the result port of amd64 guests: their second UART.
	ResultPort = "/dev/ttyS1"
	// VirtioResultPort is the result port on machines with a single UART
	// (arm64's virt): a virtio console, whose driver the prober may have
	// to load first (Config.PortModules).
	VirtioResultPort = "/dev/hvc0"
	// JobPort is the serial device a waiting prober reads its job from
	// on amd64: the guest's third UART, which only the host writes to.
	JobPort = "/dev/ttyS2"
	// VirtioJobPort is the job port on machines with a single UART: a
	// second virtio console beside VirtioResultPort. A console port is
	// a tty named by its order on the bus (hvc0, hvc1), a node that
	// devtmpfs makes without udev; a named virtserialport would be
	// /dev/vportNpM (N the virtio device's index), reachable by its
	// name only through udev's /dev/virtio-ports links, and not a tty.
	VirtioJobPort = "/dev/hvc1"
)
