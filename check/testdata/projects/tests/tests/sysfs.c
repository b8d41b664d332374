// SPDX-License-Identifier: GPL-2.0
// The tests fixture's C test: the file named first holds the text
// named second. Built statically for the guest, which has no C library.
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	char buf[64] = "";
	FILE *f;

	if (argc != 3) {
		fprintf(stderr, "usage: %s FILE WANT\n", argv[0]);
		return 2;
	}
	f = fopen(argv[1], "r");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	if (strcmp(buf, argv[2]) != 0) {
		printf("%s: want %s, got %s\n", argv[1], argv[2], buf);
		return 1;
	}
	printf("%s: %s\n", argv[1], buf);
	return 0;
}
