"""The lab's vSphere endpoint: govmomi's simulator built from Debian's source, served with the lab CA."""
