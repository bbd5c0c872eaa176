from setuptools import find_packages, setup

setup(
    name="sarra",
    version="0.1.0",
    description="Move files between organisations through AMQP brokers (v02 messages)",
    long_description=open("README.rst", encoding="utf-8").read(),
    long_description_content_type="text/x-rst",
    license="GPL-2.0-or-later",
    python_requires=">=3.9",
    packages=find_packages(exclude=["tests", "tests.*"]),
    install_requires=[
        "pika>=1.3,<2",
        "paramiko>=2.11",
        "requests>=2.25",
        "appdirs>=1.4",
        "humanize>=3.0",
        "watchdog>=2.1",
        # dd metrics: the Prometheus text format and its HTTP answer (0.16 is Debian 12's)
        "prometheus-client>=0.16",
        # dd check / check_sarra: the monitoring-plugins conventions (ranges, perfdata)
        "nagiosplugin>=1.3",
    ],
    extras_require={
        "test": [
            "pytest>=7",
            "hypothesis>=6",
            "pyftpdlib>=1.5",
            "pyopenssl",
            "ruff==0.17.6",  # formatting is checked: one version for everyone
            "mypy==2.4.1",
            "import-linter>=2.1,<3",  # the import arrows (pyproject.toml), checked in CI
            "build",
            "docutils",
        ],
    },
    entry_points={
        "console_scripts": [
            f"{name} = sarra.cli:{name}"
            for name in (
                "dd_post",
                "dd_subscribe",
                "dd_sara",
                "dd_shovel",
                "dd_log",
                "dd_watch",
                "dd_sender",
                "dd_poll",
            )
        ]
        + ["dd = sarra.service.supervisor:entry", "sarra = sarra.service.supervisor:entry"]
        + ["check_sarra = sarra.service.supervisor:check_entry"]
        + ["dd_admin = sarra.admin.command:entry"]
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Operating System :: POSIX :: Linux",
        "Topic :: System :: Networking",
    ],
)
