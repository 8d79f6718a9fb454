#!/bin/sh
echo hello from a script saved on Windows
