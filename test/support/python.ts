/** Debian's interpreter, which sees python3-grpcio; a pyenv python3 on PATH would not. */
export const pythonWithGrpc = process.env.MUSTER_PYTHON ?? "/usr/bin/python3";
