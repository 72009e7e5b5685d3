# The two commands of the README. Each creates .venv and installs what is missing, once.
#   make demo   runs the main job
#   make test   runs the test suite
PYTHON     ?= python3
VENV       := .venv
BIN        := $(VENV)/bin
STAMP      := $(VENV)/.pdesuite-installed
PETSC_VER  := 3.26.1
TORCH_VER  := 2.13.0
SKSPARSE_VER := 0.4.16
PYTEST_ARGS ?=

# An optimised PETSc without Fortran (nothing here needs it). pip caches the wheel it builds, so
# this compiles once per machine; the options only matter for that first build.
export PETSC_CONFIGURE_OPTIONS ?= --with-debugging=0 --with-fc=0 --with-x=0 COPTFLAGS=-O3 CXXOPTFLAGS=-O3
export MPICC ?= mpicc

.PHONY: demo test install benchmarks bench-deps clean-venv

demo: $(STAMP)
	$(BIN)/python examples/demo.py

# One BLAS thread: the tests are many small products, where thread start-up costs more than it
# saves on two cores.
test: $(STAMP)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

install: $(STAMP)

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# neuraloperator, for the FNO throughput comparison of benchmarks/bench_operators.py only: not a
# dependency of pdesuite. Into .bench-deps/ (which only that script puts on sys.path), never into
# the venv, and with --no-deps so that pip never resolves torch (another torch spec would pull
# gigabytes of CUDA wheels). The list is what `from neuralop.models import FNO` imports and the
# venv lacks (requests: neuralop's data package imports it, though no Requires-Dist names it);
# numpy, scipy, torch, h5py and matplotlib come from the venv.
# PyDMD, for the parity part of benchmarks/bench_koopman.py only, the same way: the rest of the
# line is what `from pydmd import EDMD, HankelDMD` imports and the venv lacks (scikit-learn for
# its kernels, and what scikit-learn imports: joblib, cloudpickle, threadpoolctl, narwhals;
# typing-extensions comes from the venv). xarray and h5netcdf, which PyDMD names, are imported
# by none of the classes compared.
BENCH_DEPS := .bench-deps
bench-deps: | $(STAMP)
	rm -rf $(BENCH_DEPS)
	$(BIN)/python -m pip install -q --no-deps --only-binary=:all: --target $(BENCH_DEPS) \
		neuraloperator==2.0.0 tensorly==0.10.0 tensorly-torch==0.5.0 opt-einsum==3.4.0 \
		requests==2.34.2 charset-normalizer==3.5.2 idna==3.20 urllib3==2.8.0 certifi==2026.10.18
	$(BIN)/python -m pip install -q --no-deps --only-binary=:all: --target $(BENCH_DEPS) \
		pydmd==2025.8.1 scikit-learn==1.9.1 joblib==1.6.0 cloudpickle==3.1.2 \
		threadpoolctl==3.8.0 narwhals==2.28.0
	$(BIN)/python -c "import sys; sys.path.append('$(BENCH_DEPS)'); from neuralop.models import FNO; import neuralop; print('neuraloperator', neuralop.__version__, 'in $(BENCH_DEPS)/')"
	$(BIN)/python -c "import sys; sys.path.append('$(BENCH_DEPS)'); from pydmd import EDMD, HankelDMD; from importlib.metadata import version; print('pydmd', version('pydmd'), 'in $(BENCH_DEPS)/')"

$(STAMP): pyproject.toml Makefile
	@bash .ci/system-deps.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24" "setuptools>=68" wheel "cython>=3" numpy
	$(BIN)/python -m pip install -q torch==$(TORCH_VER)
	@# petsc first, then petsc4py against it without build isolation: PETSc compiles once.
	$(BIN)/python -c "import petsc" 2>/dev/null || $(BIN)/python -m pip install petsc==$(PETSC_VER)
	$(BIN)/python -c "import petsc4py" 2>/dev/null || $(BIN)/python -m pip install --no-build-isolation petsc4py==$(PETSC_VER)
	@# mpi4py's PyPI wheel looks for libmpi.so.12, which Debian's mpich names libmpich.so.12:
	@# build it against the system mpicc instead.
	$(BIN)/python -c "from mpi4py import MPI" 2>/dev/null || $(BIN)/python -m pip install --no-binary=mpi4py "mpi4py>=4"
	@# scikit-sparse (CHOLMOD, the [direct] extra) has no wheel: it compiles (about 15 s) against
	@# Debian's libsuitesparse-dev with the venv's numpy and Cython, without build isolation so
	@# that pip fetches no other numpy to build with; --no-binary so that it never takes a wheel
	@# bundling another SuiteSparse. pip caches the wheel it builds.
	$(BIN)/python -c "import sksparse.cholmod" 2>/dev/null || $(BIN)/python -m pip install -q --no-build-isolation --no-binary=scikit-sparse scikit-sparse==$(SKSPARSE_VER)
	$(BIN)/python -m pip install -q -e ".[torch,petsc,direct,test]"
	@touch $@

clean-venv:
	rm -rf $(VENV)
