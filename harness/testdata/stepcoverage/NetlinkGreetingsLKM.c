// SPDX-License-Identifier: GPL-2.0
/*
 * NetlinkGreetingsLKM: answers greetings sent over a netlink socket.
 *
 * Wire contract (user space holds the same constants):
 *   - netlink protocol 31, or the "protocol" module parameter;
 *   - message type NLMSG_GREET (20); the greeting text is the payload up to
 *     its first NUL, or the whole payload if it has none, 1 to 1024 bytes;
 *   - NLM_F_REQUEST is not required: the original client sends NLM_F_ACK
 *     alone, with the payload padded with NULs to 1024 bytes;
 *   - a greeting with NLM_F_ACK gets a reply of type NLMSG_GREET with the
 *     same sequence number and the NUL-terminated payload
 *     "Msg from Process <portid> has been processed by kernel", then a
 *     standard ack (NLMSG_ERROR, error 0); without NLM_F_ACK nothing is sent;
 *     if the reply cannot be sent, the ack carries that error instead;
 *   - answers go to the sender's port NETLINK_CB(skb).portid, never to
 *     nlmsg_pid;
 *   - errors are acked as netlink_rcv_skb() does, with or without NLM_F_ACK:
 *     -EINVAL for an empty or too long text, -EOPNOTSUPP for any other type
 *     >= NLMSG_MIN_TYPE; control types are acked with 0 if asked, else
 *     ignored; a malformed header ends the datagram silently.
 *
 * Kernel log lines (prefixed with "NetlinkGreetingsLKM: "), also listed in
 * MESSAGES.md; their text is stable:
 *   info  "loaded, netlink protocol %d"
 *   info  "unloaded"
 *   err   "invalid netlink protocol %d, must be 0 to 31"
 *   err   "cannot create netlink socket for protocol %d: error %d"
 *   err   "cannot create netlink socket for protocol %d in a network namespace"
 *         (rate limited; also when a namespace is created later)
 *   info  "greeting from port %u: %*pE"  (rate limited, at most 64 bytes of
 *         text, non-printable bytes escaped)
 *   debug "message type %hu len %u flags 0x%hx seq %u port %u"
 *   debug "malformed message, len %u with %u bytes left, dropping datagram"
 *   debug "reply to port %u failed: error %d"
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/netlink.h>
#include <linux/skbuff.h>
#include <linux/string.h>
#include <net/net_namespace.h>
#include <net/netlink.h>
#include <net/netns/generic.h>
#include <net/sock.h>

#define GREET_PROTOCOL_DEFAULT	31
#define NLMSG_GREET		20
#define GREET_TEXT_MAX		1024
#define GREET_LOG_MAX		64
#define GREET_REPLY_FMT \
	"Msg from Process %u has been processed by kernel"

static int protocol = GREET_PROTOCOL_DEFAULT;
module_param(protocol, int, 0444);
MODULE_PARM_DESC(protocol, "Netlink protocol number to listen on (default 31)");

/* The kernel socket of one network namespace. */
struct greet_net {
	struct sock *sk;
};

static unsigned int greet_net_id;

/* Sends the greeting reply to the sender of @skb, which is left untouched. */
static int greet_reply(struct sk_buff *skb, const struct nlmsghdr *nlh)
{
	u32 portid = NETLINK_CB(skb).portid;
	struct nlmsghdr *rep;
	struct sk_buff *out;
	int len;
	int err;

	len = snprintf(NULL, 0, GREET_REPLY_FMT, portid) + 1;
	out = nlmsg_new(len, GFP_KERNEL);
	if (!out)
		return -ENOMEM;

	rep = nlmsg_put(out, 0, nlh->nlmsg_seq, NLMSG_GREET, len, 0);
	if (!rep) {
		nlmsg_free(out);
		return -EMSGSIZE;
	}
	snprintf(nlmsg_data(rep), len, GREET_REPLY_FMT, portid);

	/* nlmsg_unicast() consumes @out, whether it succeeds or not. */
	err = nlmsg_unicast(skb->sk, out, portid);
	if (err)
		pr_debug("reply to port %u failed: error %d\n", portid, err);
	return err;
}

/*
 * Handles one message; returns the error to ack with. Like a netlink_rcv_skb()
 * callback, except that it also sees messages without NLM_F_REQUEST and
 * control messages.
 */
static int greet_msg(struct sk_buff *skb, const struct nlmsghdr *nlh)
{
	const char *text = nlmsg_data(nlh);
	int textlen;

	if (nlh->nlmsg_type < NLMSG_MIN_TYPE)
		return 0;
	if (nlh->nlmsg_type != NLMSG_GREET)
		return -EOPNOTSUPP;

	textlen = strnlen(text, min(nlmsg_len(nlh), GREET_TEXT_MAX + 1));
	if (textlen < 1 || textlen > GREET_TEXT_MAX)
		return -EINVAL;

	pr_info_ratelimited("greeting from port %u: %*pE\n",
			    NETLINK_CB(skb).portid,
			    min(textlen, GREET_LOG_MAX), text);

	if (!(nlh->nlmsg_flags & NLM_F_ACK))
		return 0;

	return greet_reply(skb, nlh);
}

/*
 * The socket's input callback, modelled on netlink_rcv_skb(). It runs in the
 * sender's context and must not free @skb.
 */
static void greet_rcv(struct sk_buff *skb)
{
	while (skb->len >= NLMSG_HDRLEN) {
		struct nlmsghdr *nlh = nlmsg_hdr(skb);
		u32 msglen;
		int err;

		if (nlh->nlmsg_len < NLMSG_HDRLEN ||
		    skb->len < nlh->nlmsg_len) {
			pr_debug("malformed message, len %u with %u bytes left, dropping datagram\n",
				 nlh->nlmsg_len, skb->len);
			return;
		}

		pr_debug("message type %hu len %u flags 0x%hx seq %u port %u\n",
			 nlh->nlmsg_type, nlh->nlmsg_len, nlh->nlmsg_flags,
			 nlh->nlmsg_seq, NETLINK_CB(skb).portid);

		err = greet_msg(skb, nlh);
		if (err || (nlh->nlmsg_flags & NLM_F_ACK))
			netlink_ack(skb, nlh, err, NULL);

		msglen = NLMSG_ALIGN(nlh->nlmsg_len);
		if (msglen > skb->len)
			msglen = skb->len;
		skb_pull(skb, msglen);
	}
}

static int __net_init greet_net_init(struct net *net)
{
	struct greet_net *gn = net_generic(net, greet_net_id);
	struct netlink_kernel_cfg cfg = {
		.input = greet_rcv,
	};

	gn->sk = netlink_kernel_create(net, protocol, &cfg);
	if (!gn->sk) {
		pr_err_ratelimited("cannot create netlink socket for protocol %d in a network namespace\n",
				   protocol);
		return -ENOMEM;
	}
	return 0;
}

static void __net_exit greet_net_exit(struct net *net)
{
	struct greet_net *gn = net_generic(net, greet_net_id);

	netlink_kernel_release(gn->sk);
}

static struct pernet_operations greet_net_ops = {
	.init = greet_net_init,
	.exit = greet_net_exit,
	.id = &greet_net_id,
	.size = sizeof(struct greet_net),
};

static int __init greet_init(void)
{
	int err;

	if (protocol < 0 || protocol >= MAX_LINKS) {
		pr_err("invalid netlink protocol %d, must be 0 to %d\n",
		       protocol, MAX_LINKS - 1);
		return -EINVAL;
	}

	/* Creates the socket in every namespace, now and as they appear. */
	err = register_pernet_subsys(&greet_net_ops);
	if (err) {
		pr_err("cannot create netlink socket for protocol %d: error %d\n",
		       protocol, err);
		return err;
	}

	pr_info("loaded, netlink protocol %d\n", protocol);
	return 0;
}

static void __exit greet_exit(void)
{
	unregister_pernet_subsys(&greet_net_ops);
	pr_info("unloaded\n");
}

module_init(greet_init);
module_exit(greet_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Answers greetings sent over a netlink socket");
MODULE_AUTHOR("kmodtest authors");
