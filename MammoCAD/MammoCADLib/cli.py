"""Placeholder until the MammoCAD CLI lands (issue 5)."""


def add_parser(subparsers):
    p = subparsers.add_parser("mammo", help="mammography CAD")
    p.add_argument("input")
    p.set_defaults(func=run)


def run(args):
    from quantgpu.cli import input_path

    input_path(args.input)
    raise NotImplementedError("mammography CAD is not implemented yet")


def demo(output_dir, backend="auto", force=False):
    raise NotImplementedError
